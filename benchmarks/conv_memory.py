"""Peak memory and time of training with the from-scratch convolutions, and of ``verify``.

    python benchmarks/conv_memory.py train                      # ResNet-18, batch 64, torch and im2col
    python benchmarks/conv_memory.py train --impls torch,im2col,shift_add --batch 32
    python benchmarks/conv_memory.py verify path/to/models.py --impl im2col   # minutes on a large model

Each measurement runs in a process of its own, since a process's peak memory only grows:

- ``train``: a CIFAR-style ResNet-18 (3×32×32 inputs, 10 classes) with every convolution
  swapped for the implementation (``torch``: torch's own layers), two training steps (forward,
  a sum as the loss, backward). Reported: how far the step raised the process's peak resident
  memory above where it stood before the first step, and the seconds per step.
- ``verify``: ``shapecheck verify FILE`` through :func:`shapecheck.api.verify_file` on the
  CPU. Reported: the seconds, the peak resident memory of the whole run, and whether every
  model matched torch.

Prints markdown.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _resnet18():
    from torch import nn

    def block(cin, cout, stride):
        body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        skip = nn.Sequential()
        if stride != 1 or cin != cout:
            skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        return body, skip

    class Residual(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body, self.skip = block(cin, cout, stride)

        def forward(self, x):
            return (self.body(x) + self.skip(x)).relu()

    stages, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        stages += [Residual(cin, cout, stride), Residual(cout, cout, 1)]
        cin = cout
    return nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), *stages,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def measure_train(impl: str, batch: int) -> dict:
    import torch

    from shapecheck.conv.swap import swap

    torch.manual_seed(0)
    model = _resnet18()
    if impl != "torch":
        swap(model, impl)
    x = torch.randn(batch, 3, 32, 32)
    before = _peak_mb()
    start = time.perf_counter()
    for _ in range(2):
        model.zero_grad()
        model(x).sum().backward()
    return {"impl": impl, "batch": batch, "peak_mb": _peak_mb() - before,
            "seconds_per_step": (time.perf_counter() - start) / 2}


def measure_verify(path: str, impl: str) -> dict:
    from shapecheck import api

    start = time.perf_counter()
    reports, skipped = api.verify_file(path, impls=impl, device="cpu")
    return {"path": path, "impl": impl, "seconds": time.perf_counter() - start, "peak_mb": _peak_mb(),
            "models": len(reports), "skipped": len(skipped), "all_match": all(r.ok for r in reports)}


def _child(kind: str, *args: str) -> dict:
    """One measurement in a fresh process."""
    out = subprocess.run([sys.executable, __file__, "--child", kind, *args], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="what")
    train = sub.add_parser("train", help="a ResNet-18 training step with each implementation")
    train.add_argument("--impls", default="torch,im2col")
    train.add_argument("--batch", type=int, default=64)
    verify = sub.add_parser("verify", help="shapecheck verify on a file")
    verify.add_argument("path")
    verify.add_argument("--impl", default="im2col")
    opts = parser.parse_args(argv)
    if opts.child:
        sys.path.insert(0, str(ROOT))
        kind, *args = opts.child
        result = measure_train(args[0], int(args[1])) if kind == "train" else measure_verify(*args)
        print(json.dumps(result))
        return 0
    if opts.what == "train":
        print(f"ResNet-18 (CIFAR-style), batch {opts.batch}, 3×32×32, two training steps on the CPU\n")
        print("| implementation | peak memory over the start | seconds per step |\n|---|---|---|")
        for impl in opts.impls.split(","):
            r = _child("train", impl, str(opts.batch))
            print(f"| {impl} | {r['peak_mb']:.0f} MB | {r['seconds_per_step']:.2f} |")
    elif opts.what == "verify":
        r = _child("verify", str(Path(opts.path).resolve()), opts.impl)
        print(f"shapecheck verify {opts.path} --impl {opts.impl}: {r['seconds']:.0f} s, peak memory "
              f"{r['peak_mb'] / 1e3:.1f} GB, {r['models']} model(s) verified, {r['skipped']} skipped, "
              f"{'all match torch' if r['all_match'] else 'SOME DIFFER'}")
    else:
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
