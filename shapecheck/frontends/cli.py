"""`shapecheck`: the command line.

    shapecheck FILE... [--input 16,1,32,32] [--init n=10] [--format text|concise|json] [--fix|--diff]
    shapecheck explain SC101
    shapecheck verify FILE [--impl all] [--device auto|cpu|cuda]
    shapecheck lsp [--timeout SECONDS]     (a language server on stdio; needs the `lsp` extra)

Exit codes: 0 no errors, 1 errors found, 2 usage or internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

EXIT_OK, EXIT_USAGE = 0, 2


def main(argv: list[str] | None = None, worker=None) -> int:
    """Run the command line; ``worker``: a running `shapecheck.worker.Worker` to reuse (tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    from ..errors import InternalError, ShapecheckError

    command = argv[0] if argv and argv[0] in ("check", "explain", "verify", "lsp") else "check"
    if argv and argv[0] == command:
        argv = argv[1:]
    try:
        if command == "check":
            return _check(argv, worker)
        return {"explain": _explain, "verify": _verify, "lsp": _lsp}[command](argv)
    except InternalError as exc:
        print(f"shapecheck: internal error: {exc}{_REPORT_IT}", file=sys.stderr)
        return EXIT_USAGE
    except ShapecheckError as exc:
        print(f"shapecheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_USAGE
    except Exception as exc:  # a bug in shapecheck itself
        if os.environ.get("SHAPECHECK_DEBUG") or "--debug" in argv:
            raise
        print(f"shapecheck: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2 without argparse's SystemExit surprises
        from ..errors import UsageError
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _check_parser() -> argparse.ArgumentParser:
    from ..config import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT

    p = _Parser(prog="shapecheck", description="Find shape bugs in PyTorch models before anything runs.")
    p.add_argument("files", nargs="+", metavar="PATH",
                   help="Python files that define nn.Module models, or folders to search for them")
    p.add_argument("--input", action="append", default=[], metavar="SHAPE",
                   help="input shape, e.g. 16,1,32,32 or 16,20:int64 (repeat for several forward arguments)")
    p.add_argument("--init", action="append", default=[], metavar="NAME=VALUE",
                   help="constructor argument, VALUE a Python literal (repeatable)")
    p.add_argument("--model", action="append", default=[], metavar="NAME", help="check only this model")
    p.add_argument("--format", choices=("text", "concise", "json"), default="text")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the diagnostics")
    p.add_argument("--fix", action="store_true", help="apply the fixes proven safe, in place")
    p.add_argument("--diff", action="store_true", help="print the safe fixes as a diff; change nothing")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"time limit per model (default {DEFAULT_TIMEOUT:g}; 0: none)")
    p.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB, metavar="MIB",
                   help=f"memory the checking process may take (default {DEFAULT_MEMORY_MB}; 0: no limit)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run the model code in this process, without the worker's guard and limits")
    p.add_argument("--no-color", action="store_true", help="no colour (also: NO_COLOR=1)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return p


def _console(no_color: bool = False):
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, highlight=False, no_color=no_color or not tty or bool(os.environ.get("NO_COLOR")),
                   width=None if tty else 110, soft_wrap=not tty)


def _check(argv: list[str], worker=None) -> int:
    from ..config import Settings

    args = _check_parser().parse_args(argv)
    own = worker is None and not args.no_sandbox
    if own:
        from ..worker import Worker
        worker = Worker(memory_mb=args.memory, debug=args.debug)
        worker.start()  # torch loads in the worker while the files are read here
    try:
        settings = Settings(inputs=tuple(args.input), init=tuple(args.init), models=tuple(args.model),
                            timeout=args.timeout, memory_mb=args.memory)
        return _check_paths(args, settings, None if args.no_sandbox else worker)
    finally:
        if own:
            worker.close()


def _check_paths(args, settings, worker) -> int:
    from ..errors import InternalError, UsageError
    from ..source.walk import python_files

    console = _console(args.no_color)
    reports, code = [], EXIT_OK
    for path, named in python_files(args.files):
        try:
            report = _check_one(path, settings, worker, args, console)
        except (InternalError, UsageError) as exc:
            kind = "internal error" if isinstance(exc, InternalError) else "error"
            print(f"shapecheck: {kind}: {exc}" + _REPORT_IT * isinstance(exc, InternalError), file=sys.stderr)
            code = EXIT_USAGE
            continue
        if not named and _no_models(report):
            continue  # found while walking a folder: nothing to say about a file without models
        reports.append(report)
        if args.format == "text" and not args.diff:
            from ..render.terminal import render_report
            render_report(report, _console(args.no_color), quiet=args.quiet)
    _print_documents(reports, args)
    return max([code] + [r.exit_code(args.strict) for r in reports])


_REPORT_IT = "\n  this is a bug in shapecheck; please report it with the file (run with --debug for the traceback)"


def _check_one(path, settings, worker, args, console):
    report = _run_check(path, settings, worker)
    if args.fix or args.diff:
        report = _apply_fixes(report, path, args, console, settings, worker)
    return report


def _run_check(path, settings, worker):
    from ..api import check_file

    if worker is None:
        return check_file(path, settings=settings)
    return worker.check_file(path, settings)


def _no_models(report) -> bool:
    return not report.models and all(d.code == "SC908" for d in report.diagnostics)


def _apply_fixes(report, path, args, console, settings, worker):
    from ..api import fixed_source, source_diff

    text, count = fixed_source(report)
    if not count:
        return report
    if args.diff:
        sys.stdout.write(source_diff(path, report.source, text))
        return report
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    console.print(f"{path}: applied {count} fix{'es' * (count != 1)}")
    return _run_check(path, settings, worker)


def _print_documents(reports, args) -> None:
    if args.format == "json":
        from ..render.machine import json_document
        sys.stdout.write(json_document(reports) + "\n")
    elif args.format == "concise":
        from ..render.terminal import concise
        text = "\n".join(t for t in (concise(r) for r in reports) if t)
        if text:
            print(text)


def _explain(argv: list[str]) -> int:
    from ..api import explain
    from ..errors import UsageError

    if len(argv) != 1:
        raise UsageError("usage: shapecheck explain CODE (e.g. SC101)")
    print(explain(argv[0]))
    return EXIT_OK


def _verify(argv: list[str]) -> int:
    p = _Parser(prog="shapecheck verify",
                description="Swap in the from-scratch convolutions and compare with torch, forward and backward.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--input", action="append", default=[], metavar="SHAPE")
    p.add_argument("--init", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--impl", default="all", help="'all' or a comma-separated list of implementations")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--no-color", action="store_true")
    args = p.parse_args(argv)
    from .verify_cmd import run_verify
    return run_verify(args.file, args.input, args.init, args.impl, args.device, args.format,
                      _console(args.no_color))


def _lsp(argv: list[str]) -> int:
    from ..config import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
    from ..errors import UsageError

    p = _Parser(prog="shapecheck lsp", description="A Language Server Protocol server on stdin/stdout.")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"time limit per model (default {DEFAULT_TIMEOUT:g}; 0: none)")
    p.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB, metavar="MIB",
                   help=f"memory the checking process may take (default {DEFAULT_MEMORY_MB}; 0: no limit)")
    args = p.parse_args(argv)
    try:
        from .lsp import serve
    except ImportError as exc:
        raise UsageError(f"the language server needs pygls ({exc}): pip install 'torch-shapecheck[lsp]'") from None
    return serve(args.timeout, args.memory)


def run() -> None:
    """The console script: exits without the interpreter's teardown of torch's modules.

    Once torch is loaded, a normal interpreter exit spends most of a second freeing modules
    that the process is about to lose anyway. The CLI registers no exit handlers, so after
    flushing its output it leaves at once. In-process callers use :func:`main`.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    run()
