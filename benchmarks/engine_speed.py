"""In-process speed of the shape engine on two big models, each in a fresh process.

    python benchmarks/engine_speed.py [--runs 5] [--quick]

- ResNet-50 (batch 8, 3x224x224; target <= 0.3 s per check): the first check in the process
  (it pays torch's one-time lazy imports and meta registrations) and the median of `--runs`
  warm checks. Interleaved with the same forward pass without shapecheck — plain meta tensors,
  fake tensors with static shapes, fake tensors with a symbolic batch (what shapecheck uses) —
  so the table separates shapecheck's own cost from torch's.
- A LLaMA-shaped 7B decoder on the meta device (2 x 2048 int64 tokens; target <= 3 s and
  <= 1 GB peak RSS for the whole process): a first and two warm checks, then `ru_maxrss` of
  that process. Its torch-only forward passes run in another fresh process (not counted in the
  RSS), unless --quick.

Every check is asserted to be real: clean report, status "checked", and the expected output
shape (8 x 1000 logits; 2 x 2048 x 32000 logits). Wall and CPU (process) time are both shown:
CPU time suffers less when other work shares the cores.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = {
    # name: (module, class, input, expected output shape, warm runs cap)
    "resnet50": ("resnet50", "ResNet50", (8, 3, 224, 224), (8, 1000), None),
    "decoder": ("llama_decoder", "LlamaDecoder", "2,2048:int64", (2, 2048, 32000), 2),
}
TARGETS = {"resnet50": (0.3, None), "decoder": (3.0, 1024.0)}  # seconds, peak RSS MiB


# -- the child: one model, one fresh process -----------------------------------------------
def build(name: str):
    import importlib

    import torch
    sys.path.insert(0, os.path.join(HERE, "models"))
    module_name, class_name = MODELS[name][:2]
    cls = getattr(importlib.import_module(module_name), class_name)
    with torch.device("meta"):
        return cls()


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def checked(name: str, model):
    """One shapecheck run, asserted to be a full, clean check with the right output."""
    from shapecheck.api import check

    report = check(model, MODELS[name][2])
    result = report.models[0]
    expected = MODELS[name][3]
    assert report.ok and not report.diagnostics, [d.message for d in report.diagnostics]
    assert result.status.value == "checked", (result.status, result.reason)
    assert tuple(result.output_shapes[0]) == expected, (result.output_shapes, expected)
    return len(result.records)


def example_input(name: str, mode=None, symbolic: bool = False):
    """The model's input as a meta tensor, or a fake one (batch symbolic when asked)."""
    import torch
    from torch.fx.experimental.symbolic_shapes import DimDynamic, StatelessSymbolicContext

    spec = MODELS[name][2]
    shape, dtype = (spec, torch.float32) if isinstance(spec, tuple) else ((2, 2048), torch.int64)
    real = torch.zeros(shape, dtype=dtype, device="meta")
    if mode is None:
        return real
    if not symbolic:
        return mode.from_tensor(real, static_shapes=True)
    dims = [DimDynamic.DYNAMIC] + [DimDynamic.STATIC] * (len(shape) - 1)
    return mode.from_tensor(real, symbolic_context=StatelessSymbolicContext(dynamic_sizes=dims))


def torch_forward(name: str, model, kind: str) -> None:
    """The same forward pass without shapecheck: 'meta', 'fake static' or 'fake symbolic'."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    if kind == "meta":
        with torch.device("meta"):
            model(example_input(name))
        return
    symbolic = kind == "fake symbolic"
    mode = FakeTensorMode(shape_env=ShapeEnv() if symbolic else None, allow_non_fake_inputs=True)
    x = example_input(name, mode, symbolic)
    with torch.device("meta"), mode:
        model(x)


def child(name: str, runs: int, floors: bool, checks: bool) -> dict:
    start = time.perf_counter()
    import torch  # noqa: F401  (import cost kept out of the check timings)
    import shapecheck.api  # noqa: F401
    imported = time.perf_counter() - start
    build_wall, _, model = timed(lambda: build(name))
    out = {"model": name, "import_s": imported, "build_s": build_wall,
           "params": sum(p.numel() for p in model.parameters())}
    kinds = (["shapecheck"] if checks else []) + (["meta", "fake static", "fake symbolic"] if floors else [])
    first_runs = {kind: timed(lambda: run_kind(name, model, kind)) for kind in kinds}
    first = {kind: value[:2] for kind, value in first_runs.items()}
    warm = {kind: [] for kind in kinds}
    for _ in range(runs):
        for kind in kinds:
            warm[kind].append(timed(lambda: run_kind(name, model, kind))[:2])
    import resource
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["first"], out["warm"] = first, warm
    if checks:
        out["records"] = first_runs["shapecheck"][2]
    return out


def run_kind(name: str, model, kind: str):
    return checked(name, model) if kind == "shapecheck" else torch_forward(name, model, kind)


# -- the parent: fresh processes, one table ----------------------------------------------
def spawn(name: str, runs: int, floors: bool, checks: bool = True) -> dict:
    argv = [sys.executable, "-W", "ignore", os.path.abspath(__file__), "--child", name, str(runs),
            str(int(floors)), str(int(checks))]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name}: the check failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def med(samples, i: int) -> float:
    return statistics.median(s[i] for s in samples) if samples else float("nan")


def row(label: str, first, warm, note: str = "") -> str:
    return (f"| {label} | {first[0]:.2f} / {first[1]:.2f} | {med(warm, 0):.2f} / {med(warm, 1):.2f} "
            f"| {len(warm)} | {note} |")


def model_rows(title: str, data: dict, name: str) -> list[str]:
    limit, rss_limit = TARGETS[name]
    rows = []
    if "shapecheck" in data["first"]:
        verdict = "met" if med(data["warm"]["shapecheck"], 0) <= limit else "NOT met"
        note = f"target ≤ {limit} s warm: {verdict}; {data['records']} shape records"
        if rss_limit:
            rss_ok = "met" if data["rss_mib"] <= rss_limit else "NOT met"
            note += f"; peak RSS {data['rss_mib']:.0f} MiB (target ≤ {rss_limit:.0f}: {rss_ok})"
        rows.append(row(f"**{title}: shapecheck.check**", data["first"]["shapecheck"],
                        data["warm"]["shapecheck"], note))
    for kind in ("meta", "fake static", "fake symbolic"):
        if kind in data["first"]:
            rows.append(row(f"{title}: torch forward only, {kind}", data["first"][kind], data["warm"][kind]))
    return rows


def table(results: list[tuple[str, str, dict]]) -> str:
    rows = ["| what | first (wall / CPU s) | warm median (wall / CPU s) | warm runs | note |",
            "|---|---|---|---|---|"]
    for title, name, data in results:
        rows += model_rows(title, data, name)
    return "\n".join(rows)


def setup_lines(results) -> str:
    lines = []
    for title, _, data in results:
        lines.append(f"- {title}: {data['params'] / 1e6:,.1f} M parameters, built on meta in "
                     f"{data['build_s']:.3f} s; `import torch, shapecheck.api` {data['import_s']:.2f} s")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="warm ResNet-50 checks (default 5; the decoder does 2)")
    p.add_argument("--quick", action="store_true", help="skip the decoder's torch-only forward passes")
    args = p.parse_args(argv)
    resnet = spawn("resnet50", args.runs, floors=True)
    decoder = spawn("decoder", min(args.runs, MODELS["decoder"][4]), floors=False)
    results = [("ResNet-50 8×3×224×224", "resnet50", resnet), ("7B decoder 2×2048 tokens", "decoder", decoder)]
    if not args.quick:
        floor = spawn("decoder", 1, floors=True, checks=False)
        results.append(("7B decoder 2×2048 tokens", "decoder", floor))
    print("## Engine speed (in-process checks; each model in a fresh process)\n")
    print(table(results) + "\n\n" + setup_lines(results[:2]))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        name, runs, floors, checks = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5] == "1"
        print(json.dumps(child(name, runs, floors, checks)))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
