"""The parent's side of the worker: start it, send checks, enforce the deadline, survive crashes.

    with Worker() as worker:
        report = worker.check_file("model.py", settings)

A check streams phase messages ("load", then "model" per model, "fix" per fix proof). The
deadline (`settings.timeout`) runs per phase. When the worker runs past it, exits, crashes or
is killed for memory, the model of the current phase becomes a diagnostic (SC912 timeout,
SC913 crash) and the check is sent again to a fresh worker without that model, so every other
model is still checked; a crash while a fix is proven leaves that fix unproven. A new worker
is started as soon as the old one is gone, so it is warm by the time it is needed.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace

from ..config import Settings
from ..diagnostics import Diagnostic, ModelResult, Report, Span, Status
from ..errors import InternalError, UsageError
from . import channel

START_TIMEOUT = 180.0  # importing torch on a busy machine
DUMP_WAIT = 0.5  # seconds for the stack dump of a check that ran past its deadline
GRACE = 2.0  # seconds past the phase budget before a worker is killed (at least; a quarter more for long budgets)


class Cancelled(Exception):
    """The check was stopped by `Worker.cancel()` from another thread; it has no report."""


@dataclass
class _Phase:
    name: str = "load"
    model: str = ""
    line: int | None = None


@dataclass
class _Outcome:
    kind: str  # done, usage, internal, timeout, died
    message: dict = field(default_factory=dict)
    phase: _Phase = field(default_factory=_Phase)
    reason: str = ""
    where: tuple[str, int | None, str] = ("", None, "")  # user file, line, function


class Worker:
    """One worker process, started on first use (or by `start()`), restarted after a crash."""

    def __init__(self, memory_mb: int | None = None, debug: bool = False) -> None:
        self.memory_mb = memory_mb
        self.debug = debug
        self._process: subprocess.Popen | None = None
        self._ready = False
        self._lock = threading.Lock()  # guards _busy and _cancelled: cancel() comes from another thread
        self._busy = self._cancelled = False

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- public ------------------------------------------------------------------------
    def start(self, memory_mb: int | None = None) -> None:
        """Start the process (torch is imported there) without waiting for it."""
        if self._process is None:
            self._spawn(memory_mb if memory_mb is not None else self.memory_mb)

    def check_file(self, path: str, settings: Settings | None = None) -> Report:
        from ..api import read_source, undecodable_report
        from ..source import SourceError

        try:
            source = read_source(path)
        except SourceError as exc:
            return undecodable_report(path, exc)
        return self.check_source(source, path, settings)

    def check_source(self, source: str, path: str, settings: Settings | None = None) -> Report:
        """Check source text in the worker; user code never runs in this process.

        Raises `Cancelled` when `cancel()` stops it from another thread."""
        with self._lock:
            self._busy, self._cancelled = True, False
        try:
            return self._check_source(source, path, settings or Settings())
        except InternalError:
            if self._cancelled:
                raise Cancelled(path) from None
            raise
        finally:
            with self._lock:
                self._busy = False

    def _check_source(self, source: str, path: str, settings: Settings) -> Report:
        failures = _Failures(path, source)
        for _ in range(64):
            outcome = self._attempt(source, path, replace(settings, exclude=settings.exclude + tuple(failures.excluded),
                                                          unproven=settings.unproven + tuple(failures.unproven)))
            if self._cancelled:
                raise Cancelled(path)
            failures.blocked.extend(outcome.message.get("blocked", ()))
            if outcome.kind == "done":
                return failures.merge(Report.from_dict(outcome.message["report"], source=source))
            if outcome.kind == "usage":
                raise UsageError(outcome.message["message"])
            if outcome.kind == "internal":
                detail = outcome.message.get("traceback", "") if self.debug else ""
                raise InternalError(f"{path}: {outcome.message['message']}" + (f"\n{detail}" if detail else ""))
            if not failures.add(outcome, settings.timeout):
                return failures.file_level(outcome, settings.timeout)
        raise InternalError(f"{path}: the worker failed too many times")

    def cancel(self) -> None:
        """Stop whatever the worker is doing; a fresh one starts at once.

        Safe to call from another thread while `check_source` runs: the process is killed here,
        and the checking thread cleans up, starts the fresh worker and raises `Cancelled`."""
        with self._lock:
            if self._busy:
                self._cancelled = True
                process = self._process
                if process is not None and process.poll() is None:
                    process.kill()
                return
        self._kill()
        self.start()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            channel.send(self._to_child, {"op": "exit"})
        except OSError:
            pass
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._close_pipes()

    # -- one attempt -------------------------------------------------------------------
    def _attempt(self, source: str, path: str, settings: Settings) -> _Outcome:
        self.start(settings.memory_mb)
        self._wait_ready()
        if self._cancelled:
            raise Cancelled(path)
        roots = (os.path.dirname(os.path.abspath(path)) + os.sep,)
        channel.send(self._to_child, {"op": "check", "path": path, "source": source,
                                      "settings": settings.to_dict(), "roots": roots})
        return self._collect(settings.timeout, roots)

    def _collect(self, timeout: float, roots) -> _Outcome:
        """The check's outcome. A phase may run `timeout` plus a grace period: the worker stops
        a slow trace itself at `timeout` (a partial result); the kill is for code that hangs."""
        phase, blocked = _Phase(), []
        timeout = timeout + max(GRACE, timeout / 4) if timeout > 0 else timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        while True:
            message = self._next(deadline)
            if message is None:
                outcome = self._ended(phase, roots, timed_out=deadline is not None and time.monotonic() >= deadline)
                outcome.message["blocked"] = blocked
                return outcome
            event = message.get("event")
            if event == "phase":
                phase = _Phase(message["phase"], message.get("model", ""), message.get("line"))
                deadline = time.monotonic() + timeout if timeout > 0 else None
            elif event == "blocked":
                blocked.append({**message, "model": phase.model})
            elif event == "stopped":
                continue
            else:
                message["blocked"] = blocked
                return _Outcome(event, message, phase)

    def _next(self, deadline: float | None) -> dict | None:
        """The next message, or None at the deadline or when the worker is gone."""
        while True:
            found = self._reader.message()
            if found is not None:
                return found
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._reader.fd], [], [], wait)
            if not ready or not self._reader.fill():
                return None

    def _ended(self, phase: _Phase, roots, timed_out: bool) -> _Outcome:
        where = self._stack(roots) if timed_out else ("", None, "")
        code = self._kill()
        kind = "timeout" if timed_out else "died"
        self.start()  # the next worker warms up while the parent reports
        return _Outcome(kind, {}, phase, reason=_death(code), where=where)

    def _stack(self, roots) -> tuple[str, int | None, str]:
        try:
            self._process.send_signal(signal.SIGUSR1)
            time.sleep(DUMP_WAIT)
            with open(self._dump, encoding="utf-8", errors="replace") as handle:
                return _innermost_user_frame(handle.read(), roots)
        except OSError:
            return "", None, ""

    # -- the process -------------------------------------------------------------------
    def _spawn(self, memory_mb: int | None) -> None:
        from ..config import DEFAULT_MEMORY_MB

        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        handle, self._dump = tempfile.mkstemp(prefix="shapecheck-stack-", suffix=".txt")
        os.close(handle)
        self._log = tempfile.TemporaryFile()
        memory = DEFAULT_MEMORY_MB if memory_mb is None else memory_mb
        command = [sys.executable, "-m", "shapecheck.worker.child", str(to_child_r), str(from_child_w),
                   self._dump, str(memory)]
        self._process = subprocess.Popen(
            command, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=None if self.debug else self._log, env=_child_environment(self.debug), start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self._reader = channel.Reader(self._from_child)
        self._ready = False

    def _wait_ready(self) -> None:
        if self._ready:
            return
        message = self._next(time.monotonic() + START_TIMEOUT)
        if message is None or message.get("event") != "ready":
            self._log.seek(0)
            tail = self._log.read().decode("utf-8", "replace").strip().splitlines()[-3:]
            self._kill()
            raise InternalError("the worker process did not start" + (": " + " | ".join(tail) if tail else ""))
        self._ready = True

    def _kill(self) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
        code = process.wait()
        self._close_pipes()
        return code

    def _close_pipes(self) -> None:
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.unlink(self._dump)
        except OSError:
            pass
        self._log.close()
        self._ready = False


def _child_environment(debug: bool) -> dict[str, str]:
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    if debug:
        env["SHAPECHECK_DEBUG"] = "1"
    return env


def _death(code: int | None) -> str:
    if code is None:
        return "it stopped"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        if -code == signal.SIGKILL:
            return f"it was killed ({name}; usually the system running out of memory)"
        return f"it crashed ({name})"
    return f"it exited with code {code}"


def _innermost_user_frame(dump: str, roots) -> tuple[str, int | None, str]:
    """From a faulthandler dump (most recent call first): the first frame in the user's files."""
    for line in dump.splitlines():
        line = line.strip()
        if not line.startswith('File "'):
            continue
        name, _, rest = line[6:].partition('", line ')
        number, _, function = rest.partition(" in ")
        if any(name.startswith(r) for r in roots) and "site-packages" not in name and number.isdigit():
            return name, int(number), function.strip()
    return "", None, ""


class _Failures:
    """What went wrong in earlier attempts of one check, and how it shows in the report."""

    def __init__(self, path: str, source: str) -> None:
        self.path, self.source = path, source
        self.excluded: dict[str, tuple[ModelResult, Diagnostic]] = {}
        self.unproven: set[str] = set()
        self.blocked: list[dict] = []

    def add(self, outcome: _Outcome, timeout: float) -> bool:
        """Record a failed attempt; False when it cannot be tied to one model (nothing to retry)."""
        phase = outcome.phase
        if phase.name == "fix" and phase.model and phase.model not in self.unproven:
            self.unproven.add(phase.model)
            return True
        if phase.name == "model" and phase.model and phase.model not in self.excluded:
            diagnostic = self._diagnostic(outcome, timeout, phase.model)
            result = ModelResult(name=phase.model, path=self.path, line=phase.line, input_shapes=(), input_source="",
                                 status=Status.NOT_CHECKED, reason=diagnostic.message)
            self.excluded[phase.model] = (result, replace(diagnostic, span=diagnostic.span or self._span(phase.line)))
            return True
        return False

    def file_level(self, outcome: _Outcome, timeout: float) -> Report:
        diagnostic = self._diagnostic(outcome, timeout, "")
        report = Report(path=self.path, diagnostics=(replace(diagnostic, span=diagnostic.span or self._span(1)),),
                        source=self.source)
        return self.merge(report)

    def merge(self, report: Report) -> Report:
        from ..api import ordered_diagnostics

        models = list(report.models) + [result for result, _ in self.excluded.values()]
        kept = [d for d in report.diagnostics if not (self.excluded and d.code == "SC908")]  # it had a model
        diagnostics = kept + [d for _, d in self.excluded.values()] + self._blocked(report)
        if self.excluded:
            models.sort(key=lambda m: m.line or 0)
        return replace(report, models=tuple(models), diagnostics=tuple(ordered_diagnostics(diagnostics)))

    def _blocked(self, report: Report) -> list[Diagnostic]:
        """Attempts the user's code swallowed (or that came before a crash) and no diagnostic shows."""
        from ..api import line_span
        from ..rules.catalog import rule

        shown = {(d.line, d.message) for d in report.diagnostics if d.code == "SC910"}
        out = []
        for event in self.blocked:
            line, where = event.get("line"), event.get("path") or self.path
            if (line, event["message"]) in shown:
                continue
            shown.add((line, event["message"]))
            span = line_span(where, self.source if where == self.path else "", line) if line else None
            out.append(Diagnostic(rule=rule("SC910"), message=event["message"], span=span, model=event.get("model", "")))
        return out

    def _diagnostic(self, outcome: _Outcome, timeout: float, model: str) -> Diagnostic:
        from ..api import line_span
        from ..rules.catalog import rule

        name, line, function = outcome.where
        subject = f"`{model}`" if model else "loading the file"
        if outcome.kind == "timeout":
            place = f": `{function}` (line {line}) was still running" if line else ""
            code, message = "SC912", f"{subject} did not finish within {timeout:g} s{place}; pass --timeout to allow more"
        else:
            code, message = "SC913", f"the worker died while checking {subject}: {outcome.reason}"
        span = line_span(name, self.source if name == self.path else "", line) if line else None
        return Diagnostic(rule=rule(code), message=message, span=span, model=model)

    def _span(self, line: int | None) -> Span | None:
        from ..api import line_span

        return line_span(self.path, self.source, line) if line else None
