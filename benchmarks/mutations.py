"""Inject the shape mistakes users make into the clean corpus and measure shapecheck against torch.

    python benchmarks/mutations.py [--limit N] [--kinds linear_in,conv_in,...] [--files vgg,unet]

Each mutant changes one line of one file of `tests/corpus/`. Real torch is the oracle: a mutant
is *broken* when the model fails to build or run at its input (the hinted batch and one more),
when an output shape changes, when the first or the last sample's output depends on the other
samples (the batch is mixed), or when the first sample's output stops depending on its own input. For each broken mutant: *detected* (an error or warning), *at the line*
(a finding on the mutated line), *fixed* (`--fix`'s safe edits give a model that runs and has
the unmutated output shapes, with samples kept apart). Mutants torch does not consider broken
are counted, and a finding on one of those is a false alarm.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:] = [ROOT] + [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]  # html.py here is not html

CORPUS = os.path.join(ROOT, "tests", "corpus")


@dataclass
class Mutant:
    kind: str
    path: str
    line: int
    text: str  # the whole mutated source


def _sub_line(source: str, index: int, line: str) -> str:
    lines = source.split("\n")
    lines[index] = line
    return "\n".join(lines)


def _first_argument(pattern: str, change):
    """A mutation operator that rewrites the first argument of the calls matching `pattern`."""
    regex = re.compile(pattern + r"\((?P<arg>[^,()]+(?:\([^()]*\))?[^,()]*)(?P<rest>[,)])")

    def mutate(line: str):
        match = regex.search(line)
        if match is None or match.group("arg").strip().startswith(("*", "in_channels=", "num_features=")):
            return None
        new = change(match.group("arg").strip())
        return line[:match.start("arg")] + new + line[match.end("arg"):]
    return mutate


def _remove(pattern: str):
    regex = re.compile(pattern)

    def mutate(line: str):
        return regex.sub("", line, count=1) if regex.search(line) else None
    return mutate


OPERATORS = {
    "linear_in": _first_argument(r"nn\.Linear", lambda a: f"{a} + 3"),
    "conv_in": _first_argument(r"nn\.Conv[123]d", lambda a: f"{a} + 1"),
    "norm_size": _first_argument(r"nn\.(?:BatchNorm[123]d|LayerNorm)", lambda a: f"{a} * 2"),
    "no_padding": _remove(r",\s*padding=\d+"),
    "hardcoded_batch": lambda line: line.replace("x.size(0)", "2", 1) if "view(x.size(0)" in line else None,
    "flatten_eats_batch": lambda line: re.sub(r"\.flatten\(1\)", ".view(-1, 64)", line, count=1)
    if ".flatten(1)" in line else None,
    "missing_flatten": lambda line: re.sub(r"torch\.flatten\((\w+), 1\)", r"\1", line, count=1)
    if "torch.flatten(" in line else None,
    "missing_batch_first": _remove(r",\s*batch_first=True"),
    "missing_output_padding": _remove(r",\s*output_padding=\d+"),
}


def mutants(paths, kinds) -> list[Mutant]:
    out = []
    for path in paths:
        source = open(path, encoding="utf-8").read()
        for index, line in enumerate(source.split("\n")):
            if line.lstrip().startswith(("#", '"""')):
                continue
            for kind in kinds:
                new = OPERATORS[kind](line)
                if new is not None and new != line:
                    out.append(Mutant(kind, path, index + 1, _sub_line(source, index, new)))
    return out


# -- the oracle ---------------------------------------------------------------------------
def behaviour(path: str):
    """{model: (output shapes, mixes samples)} of every model torch can build and run, at the
    hinted input and at one sample more; a model that fails maps to its error's first line."""
    import torch

    from shapecheck.api import load_models

    torch.manual_seed(0)
    out = {}
    try:
        loaded = load_models(path)
    except Exception as exc:  # noqa: BLE001 - the file does not even load: broken
        return {"*": f"load: {exc}"}
    for found in loaded:
        if found.model is None or not found.inputs:
            continue
        try:
            out[found.name] = (_run(found, torch, 0), _run(found, torch, 1)[0])
        except Exception as exc:  # noqa: BLE001 - the oracle records any failure
            out[found.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return out


def _run(found, torch, extra: int):
    inputs = []
    for spec in found.inputs:
        shape = (spec.shape[0] + extra,) + tuple(spec.shape[1:]) if spec.shape else ()
        dtype = getattr(torch, spec.dtype)
        inputs.append(torch.randn(shape, dtype=dtype) if dtype.is_floating_point else torch.ones(shape, dtype=dtype))
    model = found.model.eval()
    with torch.no_grad():
        first = _outputs(model(*inputs))
        mixes = any(_differs(first, _outputs(model(*[_changed(t, torch, keep=k) for t in inputs])), k, torch)
                    for k in (0, -1))
        deaf = not _differs(first, _outputs(model(*[_changed(t, torch, only=0) for t in inputs])), 0, torch)
    return tuple(tuple(t.shape) for t in first), mixes, deaf


def _differs(first, second, k: int, torch) -> bool:
    """Whether sample ``k`` of some output differs between two runs."""
    return any(a.dim() and b.dim() and a.shape[0] > 1 and a.shape == b.shape
               and not torch.allclose(a[k], b[k], atol=1e-5) for a, b in zip(first, second))


def _changed(tensor, torch, keep: int | None = None, only: int | None = None):
    """The input with every sample but ``keep`` changed, or only sample ``only`` changed (floats
    redrawn, indices set to 0). Sample 0 and the last are both kept in turn: a recurrent layer
    run along the batch leaves its first step alone but not its last."""
    changed = tensor.clone()
    if not changed.dim() or changed.shape[0] < 2:
        return changed
    mask = torch.zeros(changed.shape[0], dtype=torch.bool)
    if only is not None:
        mask[only] = True
    else:
        mask[:] = True
        mask[keep] = False
    changed[mask] = torch.randn_like(changed[mask]) if changed.is_floating_point() else 0
    return changed


def _outputs(out):
    import torch

    if isinstance(out, torch.Tensor):
        return (out,)
    return tuple(t for t in out if isinstance(t, torch.Tensor))


# -- one mutant ---------------------------------------------------------------------------
def evaluate(mutant: Mutant, clean) -> dict:
    from shapecheck.api import check_source, fixed_source

    folder = tempfile.mkdtemp(prefix="mutant-")
    path = os.path.join(folder, os.path.basename(mutant.path))
    open(path, "w", encoding="utf-8").write(mutant.text)
    broken = behaviour(path) != clean
    report = check_source(mutant.text, path)
    findings = [d for d in report.diagnostics if d.severity.value in ("error", "warning")]
    row = {"kind": mutant.kind, "file": os.path.basename(mutant.path), "line": mutant.line, "broken": broken,
           "detected": bool(findings), "at_line": any(d.line == mutant.line for d in findings), "fixed": False}
    if broken and findings:
        text, count = fixed_source(report)
        if count:
            open(path, "w", encoding="utf-8").write(text)
            row["fixed"] = behaviour(path) == clean
    return row


def table(rows) -> str:
    kinds = sorted({r["kind"] for r in rows})
    lines = ["| kind | mutants | broken (torch) | detected | at the line | fixed | not broken | false alarms |",
             "|---|---|---|---|---|---|---|---|"]
    for kind in kinds + ["all"]:
        mine = [r for r in rows if kind in ("all", r["kind"])]
        broken = [r for r in mine if r["broken"]]
        quiet = [r for r in mine if not r["broken"]]
        lines.append(f"| {kind} | {len(mine)} | {len(broken)} | {_share(broken, 'detected')} | "
                     f"{_share(broken, 'at_line')} | {_share(broken, 'fixed')} | {len(quiet)} | "
                     f"{sum(r['detected'] for r in quiet)} |")
    return "\n".join(lines)


def _share(rows, key) -> str:
    if not rows:
        return "–"
    hits = sum(r[key] for r in rows)
    return f"{hits} ({100 * hits / len(rows):.0f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(OPERATORS))
    parser.add_argument("--files", default="", help="corpus file stems, comma-separated (default all)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many mutants per kind")
    args = parser.parse_args()
    stems = [s for s in args.files.split(",") if s]
    paths = [p for p in sorted(glob.glob(os.path.join(CORPUS, "*.py")))
             if not stems or os.path.basename(p)[:-3] in stems]
    todo = mutants(paths, args.kinds.split(","))
    if args.limit:
        todo = [m for kind in OPERATORS for m in [x for x in todo if x.kind == kind][:args.limit]]
    start, clean, rows = time.perf_counter(), {}, []
    for mutant in todo:
        if mutant.path not in clean:
            clean[mutant.path] = behaviour(mutant.path)
        rows.append(evaluate(mutant, clean[mutant.path]))
    print(table(rows))
    missed = [r for r in rows if r["broken"] and not r["detected"]]
    print(f"\n{len(rows)} mutants of {len(paths)} files in {time.perf_counter() - start:.0f} s")
    for r in missed:
        print(f"missed: {r['kind']} {r['file']}:{r['line']}")
    for r in rows:
        if not r["broken"] and r["detected"]:
            print(f"false alarm: {r['kind']} {r['file']}:{r['line']}")


if __name__ == "__main__":
    main()
