"""Fixes: golden diffs, --fix leaves a clean file that runs in real torch, and a property test."""

import os
import re
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
from helpers import case_params, load_classes, run_real

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


# -- silent bugs and the fixes that keep the model's contract ---------------------------------
TWINS = ["batch_first", "transposed_mirror", "missing_flatten", "rows_cut", "loss_targets", "sequence_norm",
         "kernel_too_large", "unet_skip", "recurrent_size", "pixel_rows", "output_rows", "view_strides"]


@pytest.mark.parametrize("name", case_params(TWINS))
def test_fix_turns_the_case_into_its_twin(name, tmp_path, capsys):
    """--fix leaves a file that checks clean and gives the output shape its hand-fixed twin gives."""
    copy = tmp_path / f"{name}.py"
    shutil.copy(os.path.join(CASES, f"{name}.py"), copy)
    assert main([str(copy), "--fix", "-q"]) == 0
    capsys.readouterr()
    assert api.check_file(str(copy)).diagnostics == ()
    twin = os.path.join(CASES, f"{name}_fixed.py")
    assert re.sub(r"  # expect: [A-Z0-9, ]+", "", copy.read_text()) == open(twin, encoding="utf-8").read()
    twins = load_classes(twin)
    for model, spec in load_classes(str(copy)).items():
        assert _out_shape(run_real(spec)) == _out_shape(run_real(twins[model])), model


def _out_shape(out):
    return tuple((out if isinstance(out, torch.Tensor) else out[0]).shape)


STACKED = ("import torch.nn as nn\n\n\n"
           "# shapecheck: input=(2, 3, 8, 8)\n"
           "class Stacked(nn.Module):\n"
           "    def __init__(self):\n"
           "        super().__init__()\n"
           "        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 8 * 8, 10))\n\n"
           "    def forward(self, x):\n"
           "        return self.net(x)\n")


def test_a_fix_that_does_not_prove_out_is_never_applied(tmp_path, capsys):
    """Flattening the input of a Sequential that starts with a conv breaks the conv: unsafe, not applied."""
    path = tmp_path / "stacked.py"
    path.write_text(STACKED)
    (d,) = api.check_file(str(path)).diagnostics
    assert (d.code, d.line, d.fix.applicability) == ("SC107", 11, Applicability.UNSAFE)
    assert d.fix.edits[0].new_text == "x.flatten(1)"
    main([str(path), "--fix", "-q"])
    capsys.readouterr()
    assert path.read_text() == STACKED


def test_a_fix_that_rechecks_clean_but_breaks_the_contract_is_unsafe(tmp_path):
    """in_features=W on an unflattened map runs and re-checks clean, but the Linear would get a 4-D map."""
    from shapecheck.config import Settings
    from shapecheck.diagnostics import Edit, Fix
    from shapecheck.fixes import keeps_contract, prove

    path = str(tmp_path / "head.py")
    source = open(os.path.join(CASES, "missing_flatten.py"), encoding="utf-8").read()
    report = api.check_source(source, path, Settings(models=("Head",)))
    (d,) = report.diagnostics
    assert d.fix.applicability is Applicability.SAFE and d.fix.edits[0].new_text == "torch.flatten(x, 1)"
    line = source.splitlines()[9]
    start = line.index("4 * 8 * 8")
    wrong = Fix("Change `in_features` to `8`",
                (Edit(type(d.span)(path, 10, start, 10, start + len("4 * 8 * 8")), "8"),), Applicability.UNSAFE)
    patched = apply_edits(source, wrong.edits).text
    after = api.check_source(patched, path, Settings(models=("Head",), prove_fixes=False))
    assert after.diagnostics == ()  # it re-checks clean ...
    assert after.models[0].output_shapes == ((2, 4, 8, 10),)
    assert not keeps_contract(report.models[0], after.models[0], d)  # ... but fc would get 4-D, not 2-D

    def recheck(text, model):
        return api.check_source(text, path, Settings(models=(model,), prove_fixes=False))

    assert prove(wrong, d, report, recheck).applicability is Applicability.UNSAFE
    assert prove(d.fix, d, report, recheck).applicability is Applicability.SAFE


@pytest.mark.parametrize("call, expected", [
    ("nn.LSTM(32, 64)", "nn.LSTM(32, 64, batch_first=True)"),
    ("nn.LSTM(\n    32,\n    64,\n)", "nn.LSTM(\n    32,\n    64, batch_first=True\n)"),
    ("nn.Identity()", "nn.Identity(batch_first=True)"),
])
def test_a_keyword_goes_after_the_last_argument(call, expected):
    from shapecheck.diagnostics import Span
    from shapecheck.fixes.edits import keyword_insertion

    source = f"x = {call}\n"
    lines = call.split("\n")
    span = Span("m.py", 1, 4, len(lines), (4 if len(lines) == 1 else 0) + len(lines[-1]))
    edit = keyword_insertion(span, call, "batch_first", "True")
    assert apply_edits(source, (edit,)).text == f"x = {expected}\n"


TWO_ON_ONE_LINE = ("import torch.nn as nn\n\n\n"
                   "# shapecheck: input=(2, 8)\n"
                   "class Net(nn.Module):\n"
                   "    def __init__(self):\n"
                   "        super().__init__()\n"
                   "        self.net = nn.Sequential(nn.Linear(9, 4), nn.ReLU(), nn.Linear(5, 2))\n\n"
                   "    def forward(self, x):\n"
                   "        return self.net(x)\n")


def test_two_findings_on_one_line_are_proven_one_by_one(tmp_path):
    """Fixing the first Linear leaves the second one's finding, on the same line with the same
    code: that is not the first finding still there, so each fix proves out on its own."""
    from shapecheck.config import Settings
    from shapecheck.fixes import propose_fix, prove

    path = str(tmp_path / "two.py")
    report = api.check_source(TWO_ON_ONE_LINE, path, Settings(prove_fixes=False))
    assert sorted((d.code, d.line, d.fact("layer")) for d in report.diagnostics) == [
        ("SC101", 8, "net.0"), ("SC101", 8, "net.2")]

    def recheck(text, model):
        return api.check_source(text, path, Settings(models=(model,), prove_fixes=False))

    expected = {"net.0": "nn.Linear(8, 4), nn.ReLU(), nn.Linear(5, 2)",
                "net.2": "nn.Linear(9, 4), nn.ReLU(), nn.Linear(4, 2)"}
    for d in report.diagnostics:
        fix = prove(propose_fix(d, TWO_ON_ONE_LINE), d, report, recheck)
        assert fix.applicability is Applicability.SAFE, d.fact("layer")
        assert expected[d.fact("layer")] in apply_edits(TWO_ON_ONE_LINE, fix.edits).text
