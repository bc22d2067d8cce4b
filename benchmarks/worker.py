"""The worker: cold start of the CLI, warm re-checks through a running worker, and what the
sandbox itself costs.

    python benchmarks/worker.py [--runs 5] [--rechecks 10]

1. Cold: `shapecheck examples/lenet_bug.py` (the console script: a worker process is started,
   torch imported there, the file checked, the worker closed) against
   `python -c "import torch, torch._dynamo"`, fresh processes, interleaved, medians.
   Target: <= 1.15x.
2. Warm: one `Worker`, started and ready; the median time of `--rechecks` re-checks (each of a
   slightly edited text, as after a save in an editor) of
   `examples/lenet_bug.py` (LeNet, two errors, two fix proofs), `examples/lenet.py` (clean) and
   `benchmarks/models/resnet50.py` (ResNet-50 at 8x3x224x224). Targets: LeNet <= 50 ms,
   ResNet-50 <= 300 ms.
3. The sandbox's own cost: the same files checked in this process (`api.check_file`, no guard,
   no worker) against the worker; the difference is the guard, the pipe and the JSON.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import startup  # noqa: E402 - the cold-start timing helpers live there

FILES = (("LeNet with 2 errors", "examples/lenet_bug.py", 0.050),
         ("LeNet, clean", "examples/lenet.py", 0.050),
         ("ResNet-50", "benchmarks/models/resnet50.py", 0.300))


def cold(runs: int) -> str:
    samples = startup.measure(runs)
    table, meds = startup.timing_table(samples)
    return table + "\n\n" + startup.verdicts(meds)


def warm(rechecks: int) -> tuple[str, dict[str, float]]:
    from shapecheck.worker import Worker

    rows, medians = ["| file | worker, warm (median) | target | verdict |", "|---|---|---|---|"], {}
    with Worker() as worker:
        for label, path, target in FILES:
            full = os.path.join(ROOT, path)
            text = open(full, encoding="utf-8").read()
            worker.check_file(full)  # this file's first check: its own lazy imports
            times = [_timed(lambda: worker.check_source(_edited(text, i), full)) for i in range(rechecks)]
            medians[path] = statistics.median(times)
            verdict = "met" if medians[path] <= target else "NOT met"
            rows.append(f"| {label} (`{path}`) | {medians[path] * 1000:.0f} ms | ≤ {target * 1000:.0f} ms | {verdict} |")
    return "\n".join(rows), medians


def in_process(rechecks: int, through_worker: dict[str, float]) -> str:
    from shapecheck.api import check_file

    rows = ["| file | in this process (median) | through the worker | sandbox cost |", "|---|---|---|---|"]
    for label, path, _ in FILES:
        full = os.path.join(ROOT, path)
        check_file(full)
        here = statistics.median(_timed(lambda: check_file(full)) for _ in range(rechecks))
        there = through_worker[path]
        rows.append(f"| {label} | {here * 1000:.0f} ms | {there * 1000:.0f} ms | {(there - here) * 1000:+.0f} ms |")
    return "\n".join(rows)


def _edited(text: str, count: int) -> str:
    """The file as it is after an edit and a save: the text differs each time, as in an editor."""
    return text + f"\n# edit {count}\n"


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold runs of each command")
    parser.add_argument("--rechecks", type=int, default=10, help="warm re-checks of each file")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}\n")
    print("## 1. Cold start\n")
    print(cold(args.runs))
    print("\n## 2. Warm re-checks through the worker\n")
    table, medians = warm(args.rechecks)
    print(table)
    print("\n## 3. What the sandbox costs\n")
    print(in_process(args.rechecks, medians))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
