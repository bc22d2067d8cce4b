"""Render a ``shapecheck verify`` report: what was found, how it was compared, one table per
implementation, and a summary naming where each failing implementation first diverges.

Errors are against the exact answer (torch in float64 on the same inputs); "torch's own err" is
torch's error in the checked dtype, for information: the verdict uses only the tolerance.

Works on any object shaped like :class:`shapecheck.conv.verify.VerifyReport` (``model``,
``device``, ``inputs``, ``ok``, ``impls``, ``sites``, ``precision``, ``rule``, ``notes``, ``divergence`` and
``checks`` with the fields of ``Check``), so rendering never needs torch.
"""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..diagnostics import format_shape

STATUS_STYLE = {"pass": "green", "fail": "bold red", "error": "bold red", "not applicable": "dim"}
TRAIN_STYLE = {"same learning": "green", "diverges": "bold red", "not applicable": "dim"}


def render_verify(report, console: Console) -> None:
    shapes = ", ".join(format_shape(shape) for shape in report.inputs)
    console.print(Text.assemble(("verify ", "bold"), (report.model, "bold cyan"), f" on {report.device}",
                                f" at input {shapes}" if shapes else ""))
    console.print(_sites_table(report.sites))
    _print_method(report, console)
    for impl in report.impls:
        checks = [c for c in report.checks if c.impl == impl]
        if console.width >= TABLE_WIDTH:
            console.print(_impl_table(impl, checks))
        else:
            _print_impl_lines(impl, checks, console)
        for check in checks:
            if check.note:
                console.print(Text(f"  {_where(check)}: {check.note}", style="dim"))
    _print_summary(report, console)


def _print_method(report, console) -> None:
    changed = [f"{label} = {used} (was {before})" for label, before, used in report.precision if before != used]
    console.print(Text(f"{report.rule}", style="dim"))
    console.print(Text("exact arithmetic during the comparison: "
                       + ("; ".join(changed) if changed else "already exact") + "; restored afterwards",
                       style="dim"))
    for note in report.notes:
        console.print(Text(note, style="dim"))


def _sites_table(sites) -> Table:
    table = Table(title="convolutions found", title_justify="left", title_style="bold")
    for column in ("where", "kind", "source"):
        table.add_column(column)
    table.add_column("calls", justify="right")
    for site in sites:
        table.add_row(site.name, site.kind, site.source, str(site.calls))
    return table


def _impl_table(impl: str, checks) -> Table:
    table = Table(title=impl, title_justify="left", title_style="bold")
    for column in ("dtype", "mode", "layer", "kind"):
        table.add_column(column)
    for column in ("n", "max abs err", "max rel err"):
        table.add_column(column, justify="right")
    table.add_column("worst tensor")
    for column in ("tolerance", "torch's own err"):
        table.add_column(column, justify="right")
    table.add_column("result")
    table.add_column("time vs torch", justify="right")
    for c in checks:
        table.add_row(
            c.dtype, c.mode, c.layer, c.kind, str(c.reduction) if c.reduction else "", _number(c.max_abs),
            _number(c.max_rel), c.worst, _number(c.tolerance), _number(c.torch_rel),
            Text(c.status, style=STATUS_STYLE.get(c.status, "")), _ratio(c.time_ratio),
            end_section=c.layer == "(model)" and c.mode == "train")
    return table


TABLE_WIDTH = 150
"""Columns below which each implementation's rows print as two lines each, not as a table: the
table's twelve columns would cut numbers short."""


def _print_impl_lines(impl: str, checks, console) -> None:
    console.print(Text(impl, style="bold"))
    for c in checks:
        n = f", n = {c.reduction}" if c.reduction else ""
        console.print(Text.assemble(f"  {_where(c)}: {c.kind}{n}: ", (c.status, STATUS_STYLE.get(c.status, ""))))
        if math.isnan(c.max_rel):
            continue
        torch_own = f"; torch's own {_number(c.torch_rel)}" if not math.isnan(c.torch_rel) else ""
        time = f"; time {_ratio(c.time_ratio)} torch" if not math.isnan(c.time_ratio) else ""
        console.print(Text(f"    {c.worst}: error {_number(c.max_rel)} (abs {_number(c.max_abs)}) against a "
                           f"tolerance of {_number(c.tolerance)}{torch_own}{time}"))


def _print_summary(report, console) -> None:
    failed = [c for c in report.checks if not c.ok]
    for impl in report.impls:
        found = report.divergence(impl)
        if found is None:
            continue
        first, worst = found
        console.print(Text(
            f"{impl}: first diverges at {_where(first)} ({first.worst or first.status}); worst tensor: "
            f"{worst.worst or worst.status} at {_where(worst)}, error {_number(worst.max_rel)} "
            f"against a tolerance of {_number(worst.tolerance)}", style="red"))
    if failed:
        impls = ", ".join(dict.fromkeys(c.impl for c in failed))
        console.print(Text(f"{len(failed)} check(s) failed ({impls})", style="bold red"))
    else:
        console.print(Text("all implementations match torch", style="bold green"))


def _where(check) -> str:
    mode = f" {check.mode}" if check.mode else ""
    return f"{check.dtype}{mode} {check.layer}"


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2e}"


def _ratio(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}x"


CURVE_POINTS = 6
"""Steps shown of each loss curve (the first, the last and evenly spaced ones between)."""


def render_train(reports, console: Console) -> None:
    """``verify --train``: per model, the loss curves side by side and one verdict per
    implementation (works on objects shaped like :class:`shapecheck.conv.train.TrainReport`)."""
    for model in dict.fromkeys(r.model for r in reports):
        mine = [r for r in reports if r.model == model]
        first = mine[0]
        console.print(Text.assemble(("train ", "bold"), (model, "bold cyan"),
                                    f": {first.steps} steps of {first.optimizer} (lr {first.lr}) in {first.dtype}"))
        console.print(_curve_table(mine))
        for r in mine:
            verdict = Text(r.verdict, style=TRAIN_STYLE[r.verdict])
            console.print(Text.assemble(
                f"  {r.impl}: loss within {_number(r.loss_rel)} (bound {_number(r.bound)}), weights within "
                f"{_number(r.weight_rel)} ({r.worst_weight}; bound {_number(r.weight_bound)}): ", verdict))
            if r.note:
                console.print(Text(f"    {r.note}", style="dim"))


def _curve_table(reports) -> Table:
    steps = reports[0].steps
    shown = sorted({round(i * (steps - 1) / max(CURVE_POINTS - 1, 1)) for i in range(CURVE_POINTS)}) if steps else []
    table = Table(title="loss by step", title_justify="left", title_style="bold")
    table.add_column("step", justify="right")
    table.add_column("torch", justify="right")
    for r in reports:
        table.add_column(r.impl, justify="right")
    for step in shown:
        table.add_row(str(step + 1), f"{reports[0].losses_torch[step]:.6f}",
                      *(f"{r.losses_ours[step]:.6f}" for r in reports))
    return table
