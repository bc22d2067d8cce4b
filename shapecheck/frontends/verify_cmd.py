"""``shapecheck verify FILE``: the file's models, every convolution swapped, compared with torch.

The models are loaded and compared by :func:`shapecheck.api.verify_file` under the main command's rules
(no training code runs; inputs from ``--input``, an in-file hint, the project config or an
example call) and built on CPU after seeding torch's generator, so their weights are
reproducible random values. ``--train N`` trains each model N steps both ways instead and
compares the learning. Exit status: 0 all checks pass, 1 a mismatch, 2 a usage error or
nothing to verify.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass

from .. import api
from ..errors import UsageError
from ..render.verify_table import render_train, render_verify


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 0
    optimizer: str = "sgd"
    lr: float = 0.01
    dtype: str = "float64"


def run_verify(path: str, inputs: list[str], init: list[str], impls: str, device: str, fmt: str,
               console, train: TrainOptions = TrainOptions()) -> int:
    try:
        with _status() as progress:
            reports, skipped = api.verify_file(path, inputs, init, impls, device, train.steps, train.optimizer,
                                               train.lr, train.dtype, progress)
    except UsageError as exc:
        print(f"shapecheck: error: {exc}", file=sys.stderr)
        return 2
    if fmt == "json":
        data = {"path": path, "ok": all(r.ok for r in reports), "reports": [r.to_dict() for r in reports],
                "skipped": [{"model": name, "reason": reason} for name, reason in skipped]}
        console.out(json.dumps(data, indent=2), highlight=False)
    else:
        for name, reason in skipped:
            console.print(f"[yellow]skipped {name}[/]: {reason}")
        if train.steps:
            render_train(reports, console)
        for report in reports if not train.steps else ():
            render_verify(report, console)
    return 0 if all(r.ok for r in reports) else 1


@contextlib.contextmanager
def _status(stream=None):
    """A spinner on standard error (when it is a terminal) with the step verify is on and the time
    since it started; yields the function that sets the step, or None when there is no terminal."""
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Column

    step = TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis"))
    bar = Progress(SpinnerColumn(), TimeElapsedColumn(table_column=Column(min_width=7, no_wrap=True)), step,
                   console=Console(file=stream), transient=True)
    task = bar.add_task("verify")
    with bar:
        yield lambda text: bar.update(task, description=text, refresh=True)
