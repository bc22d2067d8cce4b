"""`shapecheck`: the command line.

    shapecheck FILE... [--input 16,1,32,32] [--init n=10] [--format text|concise|json] [--fix|--diff]
    shapecheck explain SC101
    shapecheck verify FILE [--impl all] [--device auto|cpu|cuda] [--train N]
    shapecheck run SCRIPT [--force] [-- script arguments]
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

    command = argv[0] if argv and argv[0] in ("check", "explain", "verify", "run", "lsp") else "check"
    if argv and argv[0] == command:
        argv = argv[1:]
    try:
        if command == "check":
            return _check(argv, worker)
        if command == "run":
            from .gate import run_command
            return run_command(argv, worker)
        return {"explain": _explain, "verify": _verify, "lsp": _lsp}[command](argv)
    except InternalError as exc:
        if "--debug" in argv:
            raise
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
    p.add_argument("--format", choices=("text", "concise", "json", "sarif", "github", "html"), default="text",
                   help="text: the rich report; concise: path:line:col: CODE message; json, sarif (2.1.0) or "
                        "github (workflow annotations): one document for the whole run; html: a page per file "
                        "with the graph of each model (needs -o)")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="with --format html: the page to write for one file, or a folder for several")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the diagnostics")
    p.add_argument("--fix", action="store_true", help="apply the fixes proven safe, in place")
    p.add_argument("--diff", action="store_true", help="print the safe fixes as a diff; change nothing")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"time limit per model (default {DEFAULT_TIMEOUT:g}; 0: none)")
    p.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB, metavar="MIB",
                   help=f"memory the checking process may take (default {DEFAULT_MEMORY_MB}; 0: no limit)")
    p.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                   help="files checked at once, each in its own worker (default: the number of cores)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run the model code in this process, without the worker's guard and limits")
    p.add_argument("--no-color", action="store_true", help="no colour (also: NO_COLOR=1)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return p


def _console(no_color: bool = False, stream=None, file_width: int = 110):
    """A console for ``stream``: the terminal's width on a terminal, ``file_width`` into a file or pipe."""
    from rich.console import Console

    stream = stream or sys.stdout
    tty = stream.isatty()
    return Console(file=stream, highlight=False, no_color=no_color or not tty or bool(os.environ.get("NO_COLOR")),
                   width=None if tty else file_width, soft_wrap=not tty)


def _check(argv: list[str], worker=None) -> int:
    from ..config import Settings

    args = _check_parser().parse_args(argv)
    if args.format == "html":
        _check_html_args(args)
    settings = Settings(inputs=tuple(args.input), init=tuple(args.init), models=tuple(args.model),
                        timeout=args.timeout, memory_mb=args.memory)
    from ..source.walk import python_files

    paths = python_files(args.files)
    jobs = 1 if worker is not None or args.no_sandbox else max(1, min(args.jobs or os.cpu_count() or 1, len(paths)))
    pool = _Workers(jobs, args, worker)
    try:
        outcomes = _run_all(paths, lambda path: _check_one(path, settings, pool.get(), args), jobs, args)
    finally:
        pool.close()
    return _report_all(outcomes, args)


class _Workers:
    """One worker per thread (started at once, so torch loads while files are read), or none
    with --no-sandbox; a worker passed in (tests) is shared and not closed."""

    def __init__(self, jobs: int, args, given=None) -> None:
        import threading

        self.given, self.args, self.local, self.started = given, args, threading.local(), []
        self.lock, self.claimed = threading.Lock(), 0
        if given is None and not args.no_sandbox:
            for _ in range(jobs):
                self._new().start()

    def _new(self):
        from ..worker import Worker

        worker = Worker(memory_mb=self.args.memory, debug=self.args.debug)
        self.started.append(worker)
        return worker

    def get(self):
        if self.given is not None or self.args.no_sandbox:
            return self.given
        if not hasattr(self.local, "worker"):
            self.local.worker = self._claim()
        return self.local.worker

    def _claim(self):
        with self.lock:
            self.claimed += 1
            return self.started[self.claimed - 1] if self.claimed <= len(self.started) else self._new()

    def close(self) -> None:
        for worker in self.started:
            worker.close()


def _run_all(paths, check, jobs: int, args) -> list:
    """(path, named, report or exception) in the order of the paths; a progress bar on a terminal."""
    from concurrent.futures import ThreadPoolExecutor

    def one(item):
        path, named = item
        try:
            return path, named, check(path)
        except Exception as exc:  # noqa: BLE001 - a usage or internal error of this file; reported in order
            return path, named, exc

    if jobs == 1 or len(paths) < 2:
        return [one(item) for item in paths]
    with ThreadPoolExecutor(max_workers=jobs) as executor, _Progress(len(paths), args) as progress:
        futures = [executor.submit(one, item) for item in paths]
        for future in futures:
            future.add_done_callback(progress.advance)
        return [f.result() for f in futures]


class _Progress:
    """Files done, models checked and errors so far, on standard error when it is a terminal."""

    def __init__(self, total: int, args) -> None:
        self.total, self.models, self.errors, self.bar = total, 0, 0, None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[status]}"), console=Console(file=sys.stderr), transient=True)
            self.task = self.bar.add_task("files", total=total, status="")

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, future) -> None:
        _, _, report = future.result()
        if self.bar is None:
            return
        if not isinstance(report, Exception):
            self.models += sum(m.status.value != "not_checked" for m in report.models)
            self.errors += len(report.errors)
        self.bar.update(self.task, advance=1, status=f"{self.models} models checked, {self.errors} errors")


def _report_all(outcomes, args) -> int:
    from ..errors import InternalError, UsageError

    reports, code = [], EXIT_OK
    for path, named, outcome in outcomes:
        if isinstance(outcome, InternalError) and args.debug and outcome.__cause__ is not None:
            raise outcome  # raised in this process (--no-sandbox): the traceback is here
        if isinstance(outcome, (InternalError, UsageError)):
            kind = "internal error" if isinstance(outcome, InternalError) else "error"
            print(f"shapecheck: {kind}: {outcome}" + _REPORT_IT * isinstance(outcome, InternalError), file=sys.stderr)
            code = EXIT_USAGE
            continue
        if isinstance(outcome, Exception):
            raise outcome
        if not named and _no_models(outcome):
            continue  # found while walking a folder: nothing to say about a file without models
        reports.append(outcome)
        if args.format == "text" and not args.diff:
            from ..render.terminal import render_report
            render_report(outcome, _console(args.no_color), quiet=args.quiet)
    _print_documents(reports, args)
    return max([code] + [r.exit_code(args.strict) for r in reports])


_REPORT_IT = " (a bug in shapecheck: please report it with the file; run with --debug for the traceback)"


def _check_html_args(args) -> None:
    from ..errors import UsageError

    if not args.output:
        raise UsageError("--format html writes files: give -o PAGE.html (or -o FOLDER/ for several files)")
    try:
        import grandalf  # noqa: F401 - the layered layout of the html pages
    except ImportError:
        raise UsageError("--format html needs the layout library: pip install 'torch-shapecheck[html]'") from None


def _check_one(path, settings, worker, args):
    report = _run_check(path, settings, worker)
    if args.fix or args.diff:
        report = _apply_fixes(report, path, args, _console(args.no_color), settings, worker)
    return report


def _run_check(path, settings, worker):
    from ..api import check_file

    if worker is None:
        return check_file(path, settings=settings)
    return worker.check_file(path, settings)


def _no_models(report) -> bool:
    return not report.models and all(d.code == "SC908" for d in report.diagnostics)


def _apply_fixes(report, path, args, console, settings, worker):
    from ..api import fixed_source, source_diff, write_fixes
    from ..errors import WriteError

    text, count = fixed_source(report)
    if not count:
        return report
    if args.diff:
        sys.stdout.write(source_diff(path, report.source, text))
        return report
    try:
        write_fixes(path, report.source, text)
    except WriteError as exc:  # a read-only file: say so; the report and exit code stand
        print(f"shapecheck: {exc}", file=sys.stderr)
        return report
    console.print(f"{path}: applied {count} fix{'es' * (count != 1)}")
    return _run_check(path, settings, worker)


def _print_documents(reports, args) -> None:
    from .. import __version__
    from ..render import machine

    if args.format == "json":
        sys.stdout.write(machine.json_document(reports) + "\n")
    elif args.format == "sarif":
        sys.stdout.write(machine.sarif_document(reports, __version__) + "\n")
    elif args.format == "github":
        text = machine.github_lines(reports)
        sys.stdout.write(text + "\n" if text else "")
    elif args.format == "html":
        from ..render.html import write_pages
        folder = len(args.files) > 1 or os.path.isdir(args.files[0]) or args.output.endswith(("/", os.sep))
        write_pages(reports, args.output, folder)
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


VERIFY_WIDTH = 160
"""Columns of ``shapecheck verify`` output written to a file or pipe: its tables have twelve
columns, and at the usual 110 rich would cut their numbers short."""


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
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    args = p.parse_args(argv)
    from .verify_cmd import TrainOptions, run_verify
    return run_verify(args.file, args.input, args.init, args.impl, args.device, args.format,
                      _console(args.no_color, file_width=VERIFY_WIDTH),
                      TrainOptions(args.train, args.optimizer, args.lr, args.train_dtype))


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
