"""Render a ``shapecheck verify`` report: one rich table per implementation.

In float32 rows the errors are against the exact answer, and "torch's own err" is torch's
float32 error against it; a row passes within the tolerance or within torch's own error.

Works on any object shaped like :class:`shapecheck.conv.verify.VerifyReport` (``model``,
``device``, ``ok``, ``impls`` and ``checks`` with the fields of ``Check``), so rendering never
needs torch.
"""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {"pass": "green", "fail": "bold red", "error": "bold red", "not applicable": "dim"}


def render_verify(report, console: Console) -> None:
    console.print(Text.assemble(("verify ", "bold"), (report.model, "bold cyan"), f" on {report.device}"))
    for impl in report.impls:
        console.print(_impl_table(impl, [c for c in report.checks if c.impl == impl]))
        for check in report.checks:
            if check.impl == impl and check.note and check.status != "pass":
                console.print(Text(f"  {check.dtype} {check.layer}: {check.note}", style="dim"))
    failed = [c for c in report.checks if not c.ok]
    if failed:
        impls = ", ".join(dict.fromkeys(c.impl for c in failed))
        console.print(Text(f"{len(failed)} check(s) failed ({impls})", style="bold red"))
    else:
        console.print(Text("all implementations match torch", style="bold green"))


def _impl_table(impl: str, checks) -> Table:
    table = Table(title=impl, title_justify="left", title_style="bold")
    for column in ("dtype", "layer", "kind"):
        table.add_column(column)
    for column in ("max abs err", "max rel err"):
        table.add_column(column, justify="right")
    table.add_column("worst tensor")
    table.add_column("torch's own err", justify="right")
    table.add_column("tolerance", justify="right")
    table.add_column("result")
    table.add_column("time vs torch", justify="right")
    for c in checks:
        table.add_row(
            c.dtype, c.layer, c.kind, _number(c.max_abs), _number(c.max_rel), c.worst,
            _number(c.torch_rel), f"{c.tolerance:.0e}", Text(c.status, style=STATUS_STYLE.get(c.status, "")),
            _ratio(c.time_ratio), end_section=c.layer == "(model)")
    return table


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2e}"


def _ratio(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}x"
