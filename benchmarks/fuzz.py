"""The long fuzz run: generated model files and mutated sources through the command line.

    python benchmarks/fuzz.py [--examples 100] [--seed 0] [--timeout 10] [--only generated|mutated]
                              [--keep DIR]

`--examples` files of each kind (hypothesis, seeded: the same seed gives the same files), each
checked by `cli.main` in this process through one shared worker (see `tests/fuzzing.py` for the
generators and the oracle). Prints one table: per kind, the files that exited 0, 1, 2 and those
that ended otherwise (an exception out of `main`, a traceback); the internal errors by their first
line; the disagreements with real torch; the models that hit the deadline (SC912) and the files
that took longer than the deadlines allow; the max and median time per file. With `--keep`, every
file with a finding or a deadline hit is written there with a note of what was found. Exits 1 on any finding.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]


@dataclass
class Record:
    kind: str  # generated, mutated
    name: str  # the file's name in its folder
    source: str
    code: int | None
    seconds: float
    internal: str = ""
    disagreement: str = ""
    problems: tuple[str, ...] = ()
    deadline_hits: int = 0  # SC912 reports
    syntax: bool = False  # reported as not valid Python (SC901)


def _record(kind: str, item, outcome, disagreement: str, timeout: float) -> Record:
    name = "model.py" if kind == "generated" else item.seed
    return Record(kind, name, item.source, outcome.code, outcome.seconds, outcome.internal_error(), disagreement,
                  tuple(outcome.problems(timeout)), outcome.stdout.count("SC912"), "SC901" in outcome.stdout)


def fuzz(kind: str, examples: int, seed: int, timeout: float, worker, folder: str) -> list[Record]:
    """Hypothesis draws `examples` files (generation only: no shrinking) and each one is checked."""
    import fuzzing
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    records: list[Record] = []
    strategy = fuzzing.model_files() if kind == "generated" else fuzzing.mutants()

    @with_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(item):
        place = os.path.join(folder, f"{kind}-{len(records)}")
        if kind == "generated":
            outcome, verdict = fuzzing.check_generated(item, worker, place, timeout)
        else:
            outcome, verdict = fuzzing.check_mutant(item, worker, place, timeout), ""
        records.append(_record(kind, item, outcome, verdict, timeout))
        print(f"\r{kind}: {len(records)}/{examples}", end="", file=sys.stderr, flush=True)

    one()
    print(file=sys.stderr)
    return records


COLUMNS = ("kind", "files", "exit 0", "exit 1", "exit 2", "other", "internal", "oracle", "SC901", "SC912",
           "overran", "max s", "median s")


def _row(kind: str, mine: list[Record]) -> tuple:
    codes = collections.Counter(r.code for r in mine)
    times = [r.seconds for r in mine]
    return (kind, len(mine), codes[0], codes[1], codes[2], len(mine) - codes[0] - codes[1] - codes[2],
            sum(bool(r.internal) for r in mine), sum(bool(r.disagreement) for r in mine),
            sum(r.syntax for r in mine), sum(r.deadline_hits for r in mine),
            sum(any("deadline" in p for p in r.problems) for r in mine), f"{max(times):.2f}",
            f"{statistics.median(times):.2f}")


def table(records: list[Record]) -> str:
    rows = [COLUMNS] + [_row(kind, [r for r in records if r.kind == kind])
                        for kind in ("generated", "mutated") if any(r.kind == kind for r in records)]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(COLUMNS))]
    lines = [" ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
             for row in rows]
    return "\n".join(lines + _grouped("internal errors", [r.internal for r in records if r.internal])
                     + _grouped("oracle disagreements", [r.disagreement for r in records if r.disagreement])
                     + _grouped("other problems", [p for r in records for p in r.problems
                                                   if not p.startswith("internal error")]))


def _grouped(title: str, lines: list[str]) -> list[str]:
    if not lines:
        return [f"{title}: none"]
    counts = collections.Counter(line[:160] for line in lines)
    return [f"{title}:"] + [f"  {n:>3} × {line}" for line, n in counts.most_common()]


def keep(records: list[Record], folder: str) -> None:
    """Every file with a finding or a model past its deadline, with what was found on its first line."""
    os.makedirs(folder, exist_ok=True)
    for i, r in enumerate(r for r in records if r.internal or r.disagreement or r.problems or r.deadline_hits):
        note = "; ".join(filter(None, (r.internal, r.disagreement, *r.problems, "SC912" * bool(r.deadline_hits))))
        note = note.replace("\n", " ")
        with open(os.path.join(folder, f"{r.kind}-{i}-{r.name}"), "w", encoding="utf-8") as handle:
            handle.write(f"# fuzz: {note[:300]}\n{r.source}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=100, help="files of each kind")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0, help="--timeout per model given to shapecheck")
    p.add_argument("--only", choices=("generated", "mutated"))
    p.add_argument("--keep", metavar="DIR", help="write the files with findings here")
    args = p.parse_args(argv)
    from shapecheck.worker import Worker

    records: list[Record] = []
    with Worker() as worker, tempfile.TemporaryDirectory(prefix="shapecheck-fuzz-") as folder:
        worker.check_file(os.path.join(ROOT, "examples", "lenet.py"))  # times are per file, not for startup
        for kind in [args.only] if args.only else ["generated", "mutated"]:
            records += fuzz(kind, args.examples, args.seed, args.timeout, worker, folder)
    print(table(records))
    if args.keep:
        keep(records, args.keep)
    return 1 if any(r.internal or r.disagreement or r.problems for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
