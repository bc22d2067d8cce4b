"""The pytest plugin through pytest itself: `--shapecheck` items, the fixture, assert_shapes."""

import os
import sys

import pytest
import torch.nn as nn

from shapecheck import assert_shapes

pytest_plugins = ["pytester"]

BUGGY = """
import torch.nn as nn


# shapecheck: input=(4, 1, 28, 28)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 24 * 24, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class Fine(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.fc = nn.Linear(width, 2)

    def forward(self, x):
        return self.fc(x)


class NeedsWidth(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, 2)

    def forward(self, x):
        return self.fc(x)


# shapecheck: input=(2, 8)
class Small(Fine):
    pass


class Dataset:
    pass
"""


class Conv(nn.Module):
    def __init__(self, flat: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(flat, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def test_assert_shapes_passes_a_sound_model_and_checks_the_output():
    report = assert_shapes(Conv(4 * 26 * 26), (16, 1, 28, 28), expect=("N", 10))
    assert report.models[0].output_shapes == ((16, 10),)


def test_assert_shapes_fails_with_each_finding_in_plain_text():
    with pytest.raises(AssertionError) as caught:
        assert_shapes(Conv(4 * 24 * 24), (16, 1, 28, 28))
    text = str(caught.value)
    assert text.startswith("shapecheck: Conv at input 16×1×28×28:\n")
    line = next(i for i, text in enumerate(open(__file__), 1) if "nn.Linear(flat, 10)" in text)
    assert f"{os.path.abspath(__file__)}:{line}:29:" in text  # the Linear's line in this file
    assert "error[SC101] `fc` expects 2304 input features (in_features=flat) but receives 2704 = 4×26×26" in text
    assert "\x1b[" not in text


def test_assert_shapes_compares_the_expected_output():
    with pytest.raises(AssertionError, match=r"expected output 16×5 \(N = 16\), got 16×10"):
        assert_shapes(Conv(4 * 26 * 26), (16, 1, 28, 28), expect=("N", 5))


def test_the_fixture_uses_the_run_options(pytester):
    pytester.makepyfile(test_fixture="""
        import torch.nn as nn

        def test_model(shapecheck):
            shapecheck(nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2)), (3, 8), expect=("N", 2))

        def test_broken(shapecheck):
            shapecheck(nn.Sequential(nn.Linear(8, 4), nn.Linear(5, 2)), (3, 8))
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*error[[]SC101[]]*expects 5 input features*receives 4*"])


def test_shapecheck_option_collects_one_item_per_model(pytester):
    pytester.makepyfile(models=BUGGY)
    result = pytester.runpytest_subprocess("--shapecheck", "-p", "no:cacheprovider", "-v", "models.py", "-rs")
    result.stdout.fnmatch_lines([
        "models.py::Net FAILED*",
        "models.py::Fine PASSED*",
        "models.py::NeedsWidth SKIPPED*",
        "models.py::Small PASSED*",
    ])
    result.stdout.fnmatch_lines([
        "*error[[]SC101[]] linear-in-features: `fc` expects 2304 input features (in_features=4 * 24 * 24) but "
        "receives 2704 = 4×26×26",
        "*fix (safe, --fix applies it): Change `in_features` to `4 * 26 * 26`*",
        "*SKIPPED*NeedsWidth: *constructor argument width*",
    ])
    assert "Dataset" not in result.stdout.str()
    assert result.ret == 1


@pytest.mark.skipif("xdist" not in sys.modules and not __import__("importlib").util.find_spec("xdist"),
                    reason="pytest-xdist is not installed")
def test_shapecheck_items_run_under_xdist(pytester):
    pytester.makepyfile(models=BUGGY, other=BUGGY.replace("4 * 24 * 24", "4 * 26 * 26"))
    result = pytester.runpytest_subprocess("--shapecheck", "-p", "no:cacheprovider", "-n", "2", "models.py",
                                           "other.py")
    result.assert_outcomes(passed=5, failed=1, skipped=2)
