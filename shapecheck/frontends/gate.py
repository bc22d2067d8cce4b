"""The pre-run gate: check a training script's models, and start it only when they are sound.

    shapecheck run train.py [--input 16,3,32,32] [--force] [-- script arguments]

checks the script and the local modules it imports (files below the script's folder), prints
the findings, and without errors runs `python train.py script-arguments` with the same
interpreter, returning its exit code. With errors it exits 1 and starts nothing; `--force`
starts it anyway. In a script, `shapecheck.gate()` at the top does the same check once per
run (child processes of the run, such as data-loader workers, do not check again).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import os
import subprocess
import sys
from dataclasses import replace

GATE_DONE = "SHAPECHECK_GATE_CHECKED"


def run_command(argv: list[str], worker=None) -> int:
    from .cli import _Parser, _console

    args, script_args = _parse(argv, _Parser)
    reports = check_script(args.script, _settings(args), worker)
    console = _console(args.no_color, stream=sys.stderr)
    errors = _show(reports, console, args.strict)
    if errors and not args.force:
        console.print(f"shapecheck: {args.script} was not started: {errors} error{'s' * (errors != 1)} "
                      "(--force starts it anyway)")
        return 1
    env = dict(os.environ, **{GATE_DONE: "1"})
    return subprocess.call([sys.executable, args.script, *script_args], env=env)


def _parse(argv: list[str], parser_class):
    script_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, script_args = argv[:at], argv[at + 1:]
    p = parser_class(prog="shapecheck run", description="Check a training script's models, then run it.")
    p.add_argument("script", metavar="SCRIPT")
    p.add_argument("--input", action="append", default=[], metavar="SHAPE")
    p.add_argument("--init", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    p.add_argument("--strict", action="store_true", help="warnings stop the script too")
    p.add_argument("--force", action="store_true", help="run the script even with errors")
    p.add_argument("--no-color", action="store_true")
    args = p.parse_args(argv)
    if not os.path.isfile(args.script):
        from ..errors import UsageError
        raise UsageError(f"{args.script}: no such file")
    return args, script_args


def _settings(args):
    return _gate_settings(args.input, args.timeout, args.init)


def _gate_settings(inputs, timeout, init=()):
    """Settings for the gate: the given inputs and constructor arguments, the timeout when given."""
    from ..config import Settings

    settings = Settings(inputs=tuple(inputs), init=tuple(init))
    return settings if timeout is None else replace(settings, timeout=timeout)


def check_script(script: str, settings=None, worker=None) -> list:
    """The reports of the script and of the local modules it imports (those with models)."""
    from ..worker import Worker

    own = worker is None
    worker = worker or Worker()
    try:
        reports = [worker.check_file(script, settings)]
        for module in local_imports(script):
            report = worker.check_file(module, settings)
            if report.models:
                reports.append(report)
        return reports
    finally:
        if own:
            worker.close()


def local_imports(script: str) -> list[str]:
    """Python files below the script's folder that it imports, directly or through each other."""
    root = os.path.dirname(os.path.abspath(script))
    seen, queue, found = {os.path.abspath(script)}, [os.path.abspath(script)], []
    while queue:
        for path in _imported_files(queue.pop(0), root):
            if path not in seen:
                seen.add(path)
                queue.append(path)
                found.append(path)
    return found


def _imported_files(path: str, root: str) -> list[str]:
    try:
        with open(path, "rb") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [(a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "", node.level)] + [(f"{node.module}.{a.name}" if node.module else a.name,
                                                          node.level) for a in node.names]
        else:
            continue
        out += [f for name, level in names for f in [_resolve(name, level, path, root)] if f]
    return out


def _resolve(name: str, level: int, importer: str, root: str) -> str | None:
    base = os.path.dirname(importer) if level else root
    for _ in range(max(level - 1, 0)):
        base = os.path.dirname(base)
    stem = os.path.join(base, *name.split(".")) if name else base
    for candidate in (stem + ".py", os.path.join(stem, "__init__.py")):
        if os.path.isfile(candidate) and os.path.abspath(candidate).startswith(root + os.sep):
            return os.path.abspath(candidate)
    return None


def _show(reports, console, strict: bool) -> int:
    """Print the findings; the number that stop the script."""
    from ..render.terminal import render_report

    failing = ("error", "warning") if strict else ("error",)
    for report in reports:
        if report.diagnostics:
            render_report(report, console, quiet=True)
    return sum(1 for r in reports for d in r.diagnostics if d.severity.value in failing)


def gate(inputs=(), strict: bool = False, timeout: float | None = None):
    """Check the calling script's models once per run; on errors print them and exit 1.

    Returns the reports when the check passed (or was done already in this run: None)."""
    from ..errors import UsageError

    if os.environ.get(GATE_DONE):
        return None
    caller = _calling_file()
    if not os.path.isfile(caller):
        raise UsageError("shapecheck.gate() checks the file that calls it, and this code is not in a file "
                         "(a notebook?): use shapecheck.assert_shapes(model, input_shape) there")
    from .cli import _console

    reports = check_script(caller, _gate_settings(inputs, timeout))
    os.environ[GATE_DONE] = "1"
    if _show(reports, _console(stream=sys.stderr), strict):
        raise SystemExit(1)
    return reports


def _calling_file() -> str:
    """The file of the first frame outside shapecheck's own package: the script that called gate()."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    for frame in inspect.stack()[1:]:
        if not os.path.abspath(frame.filename).startswith(package):
            return frame.filename
    return ""
