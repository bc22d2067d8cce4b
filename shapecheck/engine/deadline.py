"""The time budget of one phase of a check (a model's inference, its trace, a fix proof).

`phase(settings, ...)` starts a phase and its budget (`settings.timeout` seconds) and tells the
settings' observer (the worker streams it to its parent); the tracer and
input inference call `check()` at every layer and op, so a model that is merely slow stops at
the deadline with what was learned so far: the trace keeps the layers it reached (the model
is `partial`, SC912), inference says it ran out of time (SC912, with the hint to give the
input). The worker's parent kills a worker only later, for code that never reaches a layer
(an endless loop in plain Python).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from ..errors import UserCodeStopped

_state = {"until": None, "seconds": 0.0, "inner": False}


class OutOfTime(UserCodeStopped):
    """The phase ran past its budget (a BaseException: user code cannot swallow it).
    ``inner``: only the budget of a step inside the phase (`limited`) ran out."""

    def __init__(self, seconds: float, inner: bool = False) -> None:
        super().__init__(f"stopped after {seconds:g} s (--timeout)", "SC912")
        self.seconds = seconds
        self.inner = inner


def phase(settings, name: str, model: str = "", line: int | None = None) -> None:
    """A new phase of the check, with a budget of its own."""
    start(settings.timeout)
    settings.notify(name, model, line)


def start(seconds: float | None) -> None:
    """A new phase: `seconds` from now (None or <= 0: no budget)."""
    _state["seconds"] = seconds or 0.0
    _state["until"] = time.monotonic() + seconds if seconds and seconds > 0 else None
    _state["inner"] = False


@contextmanager
def limited(share: float, at_least: float = 1.0):
    """A step inside the phase that may take `share` of the phase's budget (at least
    `at_least` seconds, never past the phase's own end); past it, `check()` raises OutOfTime
    with ``inner`` set, which the step's caller turns into a lesser answer."""
    saved = dict(_state)
    if saved["until"] is not None:
        seconds = max(at_least, share * saved["seconds"])
        until = time.monotonic() + seconds
        if until < saved["until"]:
            _state.update(until=until, seconds=seconds, inner=True)
    try:
        yield
    finally:
        _state.update(saved)


def expired() -> bool:
    until = _state["until"]
    return until is not None and time.monotonic() > until


def check() -> None:
    """Raise OutOfTime once the current phase is past its budget (and at every call after)."""
    if expired():
        raise OutOfTime(_state["seconds"], inner=_state["inner"])
