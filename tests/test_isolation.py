"""A check leaves the process as it found it: loggers, linecache, random generators,
sys.modules and sys.path, the working folder, the environment, warning filters, and torch's
defaults (device, dtype, grad mode, deterministic flags, threads, matmul precision)."""

import os

import pytest

import shapecheck
from shapecheck.worker.isolation import snapshot

from conftest import EXAMPLES, ROOT

MEDDLES = os.path.join(ROOT, "tests", "models", "sandbox", "global_state.py")


def _differences(before: dict, after: dict) -> dict:
    return {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}


@pytest.fixture
def warm():
    """torch imports some modules on first use; one check first, so only the check's own traces count."""
    shapecheck.check_file(os.path.join(EXAMPLES, "lenet_bug.py"))
    shapecheck.check_file(MEDDLES, inputs="3,4")


def test_check_file_and_check_source_leave_no_trace(warm):
    before = snapshot()
    report = shapecheck.check_file(MEDDLES, inputs="3,4")
    shapecheck.check_source(open(MEDDLES).read(), MEDDLES, shapecheck.api.Settings(inputs=("3,4",)))
    shapecheck.check_file(os.path.join(EXAMPLES, "lenet_bug.py"))
    assert report.ok and report.models[0].status.value == "checked"
    assert _differences(before, snapshot()) == {}


def test_check_of_a_model_object_leaves_no_trace(warm):
    import torch.nn as nn

    class Changes(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            import torch
            torch.set_default_dtype(torch.float64)
            torch.manual_seed(7)
            os.chdir("/")
            return self.fc(x)

    model = Changes()  # built here: its weights draw from the generator before the snapshot
    shapecheck.check(model, (3, 4))
    before = snapshot()
    report = shapecheck.check(model, (3, 4))
    assert report.ok
    assert _differences(before, snapshot()) == {}


def test_the_snapshot_sees_each_kind_of_change():
    """The comparison above can fail: each kind of state shows up in the snapshot when changed."""
    import logging
    import random
    import torch

    before = snapshot()
    level = logging.getLogger("torch").level
    logging.getLogger("torch").setLevel(logging.CRITICAL + 1)
    random.seed(5)
    torch.set_default_dtype(torch.float64)
    try:
        changed = set(_differences(before, snapshot()))
    finally:
        logging.getLogger("torch").setLevel(level)
        torch.set_default_dtype(torch.float32)
    assert {"loggers", "random", "torch_dtype"} <= changed
