"""Fixes: golden diffs, --fix leaves a clean file that runs in real torch, and a property test."""

import os
import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from shapecheck import api
from shapecheck.diagnostics import Applicability
from shapecheck.fixes import apply_edits, safe_edits
from shapecheck.fixes.apply import diff
from shapecheck.frontends.cli import main

from conftest import CASES, EXAMPLES
from helpers import load_classes, run_real

FIXABLE = [os.path.join(EXAMPLES, n) for n in ("lenet_bug.py", "dogs_cats_bug.py", "wrong_channels.py")] + [
    os.path.join(CASES, n) for n in ("batch_mixing.py", "rnn_and_norm.py", "named_values.py", "object_argument.py")]


@pytest.mark.parametrize("path", FIXABLE, ids=os.path.basename)
def test_fix_diff_golden(path, golden):
    report = api.check_file(path)
    fixed = apply_edits(report.source, safe_edits(report))
    assert fixed.ok
    golden(f"fixes/{os.path.basename(path)}.diff", diff(os.path.basename(path), report.source, fixed.text))


@pytest.mark.parametrize("path", FIXABLE, ids=os.path.basename)
def test_fix_in_place_then_clean_and_runs(path, tmp_path, capsys):
    copy = tmp_path / os.path.basename(path)
    shutil.copy(path, copy)
    assert main([str(copy), "--fix", "-q"]) == 0
    capsys.readouterr()
    assert api.check_file(str(copy)).diagnostics == ()
    for name, spec in load_classes(str(copy)).items():
        if spec.hint:
            out = run_real(spec)
            assert out.shape[0] == spec.hint[0].shape[0]  # the batch survives


def test_fix_keeps_the_users_style():
    report = api.check_file(os.path.join(EXAMPLES, "dogs_cats_bug.py"))
    fc1 = next(d for d in report.diagnostics if d.code == "SC101")
    assert fc1.fix.edits[0].new_text == "16 * 28 * 28"
    assert fc1.fix.applicability is Applicability.SAFE
    view = next(d for d in report.diagnostics if d.code == "SC201")
    assert view.fix.edits[0].new_text == "x.view(x.size(0), -1)"


def test_unproven_fix_is_not_safe(tmp_path):
    """Changing in_channels of a conv fed by an RGB image is safe only if nothing after it breaks."""
    path = tmp_path / "chain.py"
    path.write_text(
        "import torch.nn as nn\n\n"
        "# shapecheck: input=(2, 3, 8, 8)\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(1, 4, 3)\n"
        "        self.fc = nn.Linear(5, 2)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.conv(x).flatten(1))\n")
    report = api.check_file(str(path))
    codes = {d.code: d for d in report.diagnostics}
    assert set(codes) == {"SC102", "SC101"}
    # each fix alone removes its own problem without adding one: both proven safe
    assert all(d.fix.applicability is Applicability.SAFE for d in report.diagnostics)
    fixed = apply_edits(report.source, safe_edits(report))
    assert api.check_source(fixed.text, str(path)).diagnostics == ()


def test_fixes_of_one_model_are_proven_by_one_recheck_when_they_hold_together():
    from shapecheck.fixes import attach_fixes

    path = os.path.join(EXAMPLES, "lenet_bug.py")
    report = api.check_file(path, settings=api.Settings(prove_fixes=False))
    assert len(report.diagnostics) == 2
    calls = []

    def recheck(text, model):
        calls.append(model)
        return api.check_source(text, path, api.Settings(prove_fixes=False))

    proven = attach_fixes(report, recheck)
    assert calls == [report.diagnostics[0].model]  # one re-check with both fixes applied
    assert all(d.fix.applicability is Applicability.SAFE for d in proven.diagnostics)


def test_fixes_that_fail_together_are_proven_one_by_one():
    from shapecheck.fixes import attach_fixes

    path = os.path.join(EXAMPLES, "lenet_bug.py")
    report = api.check_file(path, settings=api.Settings(prove_fixes=False))
    calls = []

    def recheck(text, model):  # a re-check that still finds everything: nothing is proven
        calls.append(model)
        return api.Report(path=path, source=text, models=report.models, diagnostics=report.diagnostics)

    proven = attach_fixes(report, recheck)
    assert len(calls) == 3  # together, then each alone
    assert all(d.fix.applicability is Applicability.UNSAFE for d in proven.diagnostics)


LAYERS = st.lists(st.tuples(st.sampled_from(["conv", "pool"]), st.integers(1, 5), st.integers(0, 2)),
                  min_size=1, max_size=4)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=LAYERS, size=st.integers(12, 40), wrong=st.integers(1, 50))
def test_random_stacks_fix_makes_the_model_run(tmp_path, layers, size, wrong):
    lines, forward, channels = [], [], 3
    for i, (kind, k, pad) in enumerate(layers):
        if kind == "conv":
            lines.append(f"        self.l{i} = nn.Conv2d({channels}, 4, {k}, padding={pad})")
            channels = 4
        else:
            lines.append(f"        self.l{i} = nn.MaxPool2d({min(k, 3)})")
        forward.append(f"        x = self.l{i}(x)")
    source = ("import torch.nn as nn\n\n"
              f"# shapecheck: input=(2, 3, {size}, {size})\n"
              "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
              + "\n".join(lines) + f"\n        self.fc = nn.Linear({wrong}, 2)\n\n    def forward(self, x):\n"
              + "\n".join(forward) + "\n        return self.fc(x.flatten(1))\n")
    path = tmp_path / "stack.py"
    path.write_text(source)
    report = api.check_file(str(path))
    real = _runs(source)
    if real is None:  # runs already: no finding may be reported
        assert report.diagnostics == ()
        return
    codes = {d.code for d in report.diagnostics}
    if codes != {"SC101"}:  # the stack itself does not fit the image: not this test's subject
        assert codes & {"SC110"}
        return
    fixed = apply_edits(source, safe_edits(report)).text
    assert _runs(fixed) is None


def _runs(source: str):
    namespace = {}
    exec(compile(source, "<stack>", "exec"), namespace)
    try:
        namespace["Net"]()(torch.randn(2, 3, *[int(source.split("input=(2, 3, ")[1].split(",")[0])] * 2))
    except RuntimeError as exc:
        return exc
    return None
