"""A model that is slow, not stuck, stops at the deadline with what was learned: the trace keeps
the layers it reached (a partial check, SC912), inference says it ran out of time, and the
other models of the file are checked as usual, in this process and through the worker."""

import os

import pytest

from shapecheck import api
from shapecheck.config import Settings
from shapecheck.diagnostics import Status
from shapecheck.engine import deadline

PATH = os.path.join(os.path.dirname(__file__), "models", "sandbox", "slow_forward.py")
TIMEOUT = 1.5  # seconds per model: the quick models must finish inside it on a loaded machine


def _assert_stopped_with_what_was_learned(report):
    models = {m.name: m for m in report.models}
    assert models["Endless"].status is Status.PARTIAL
    assert [r.name for r in models["Endless"].records][:2] == ["fc", "act"]
    assert models["EndlessUnknownInput"].status is Status.NOT_CHECKED
    assert models["Wrong"].status is Status.CHECKED
    codes = sorted((d.code, d.model) for d in report.diagnostics)
    assert codes == [("SC101", "Wrong"), ("SC912", "Endless"), ("SC912", "EndlessUnknownInput")]
    endless = next(d for d in report.diagnostics if d.model == "Endless")
    assert "after `act`" in endless.message and "--timeout" in endless.message
    assert endless.severity.name == "INFO"


def test_in_this_process():
    report = api.check_file(PATH, settings=Settings(timeout=TIMEOUT))
    _assert_stopped_with_what_was_learned(report)
    assert not deadline.expired()  # nothing left running after the check
    assert next(d for d in report.diagnostics if d.code == "SC101").fix.applicability.name == "SAFE"


def test_through_the_worker(worker):
    report = worker.check_file(PATH, Settings(timeout=TIMEOUT))
    _assert_stopped_with_what_was_learned(report)


def test_no_budget_no_deadline():
    deadline.start(None)
    deadline.check()
    deadline.start(0.0)
    assert not deadline.expired()
    deadline.start(-1)
    deadline.check()
    deadline.start(1e-9)
    import time

    time.sleep(0.001)
    with pytest.raises(deadline.OutOfTime):
        deadline.check()
    deadline.start(None)
