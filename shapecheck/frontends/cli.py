"""`shapecheck`: the command line.

    shapecheck FILE... [--input 16,1,32,32] [--init n=10] [--format text|concise|json] [--fix|--diff]
    shapecheck explain SC101
    shapecheck verify FILE [--impl all] [--device auto|cpu|cuda] [--train N]

Exit codes: 0 no errors, 1 errors found, 2 usage or internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

EXIT_OK, EXIT_USAGE = 0, 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    from ..errors import ShapecheckError

    command = argv[0] if argv and argv[0] in ("check", "explain", "verify") else "check"
    if argv and argv[0] == command:
        argv = argv[1:]
    try:
        return {"check": _check, "explain": _explain, "verify": _verify}[command](argv)
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
    p = _Parser(prog="shapecheck", description="Find shape bugs in PyTorch models before anything runs.")
    p.add_argument("files", nargs="+", metavar="FILE", help="Python files that define nn.Module models")
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
    p.add_argument("--no-color", action="store_true", help="no colour (also: NO_COLOR=1)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return p


def _console(no_color: bool = False):
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, highlight=False, no_color=no_color or not tty or bool(os.environ.get("NO_COLOR")),
                   width=None if tty else 110, soft_wrap=not tty)


def _check(argv: list[str]) -> int:
    from ..api import check_file
    from ..config import Settings

    args = _check_parser().parse_args(argv)
    settings = Settings(inputs=tuple(args.input), init=tuple(args.init), models=tuple(args.model))
    console = _console(args.no_color)
    code = EXIT_OK
    for path in args.files:
        report = check_file(path, settings=settings)
        if not report.models and not report.diagnostics:
            print(f"shapecheck: error: {path}: no nn.Module model found", file=sys.stderr)
            code = max(code, EXIT_USAGE)
            continue
        if args.fix or args.diff:
            report = _apply_fixes(report, path, args, console, settings)
        _print(report, args, console)
        code = max(code, report.exit_code(args.strict))
    return code


def _apply_fixes(report, path, args, console, settings):
    from ..api import check_file, fixed_source, source_diff

    text, count = fixed_source(report)
    if not count:
        return report
    if args.diff:
        sys.stdout.write(source_diff(path, report.source, text))
        return report
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    console.print(f"{path}: applied {count} fix{'es' * (count != 1)}")
    return check_file(path, settings=settings)


def _print(report, args, console) -> None:
    if args.format == "json":
        sys.stdout.write(report.to_json() + "\n")
    elif args.format == "concise":
        from ..render.terminal import concise
        text = concise(report)
        if text:
            print(text)
    elif not args.diff:
        from ..render.terminal import render_report
        render_report(report, console, quiet=args.quiet)


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
    p.add_argument("--train", type=int, default=0, metavar="N",
                   help="train N steps with torch's and with each implementation; compare the learning")
    p.add_argument("--optimizer", default="sgd", help="sgd or adam (with --train)")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate (with --train)")
    p.add_argument("--train-dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--no-color", action="store_true")
    args = p.parse_args(argv)
    from .verify_cmd import TrainOptions, run_verify
    return run_verify(args.file, args.input, args.init, args.impl, args.device, args.format,
                      _console(args.no_color), TrainOptions(args.train, args.optimizer, args.lr, args.train_dtype))


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
