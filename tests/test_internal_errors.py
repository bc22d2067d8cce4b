"""shapecheck's own bugs are never the user's errors: an exception raised in shapecheck's code
(rules, checks, inference, locating) is an InternalError from the API and exit 2 with one
line from the command line; the user's exceptions stay findings."""

import os

import pytest

import shapecheck
from shapecheck import api, rules
from shapecheck.engine import checks, infer, usercode
from shapecheck.errors import InternalError
from shapecheck.frontends.cli import main

from conftest import CASES, EXAMPLES

LENET_BUG = os.path.join(EXAMPLES, "lenet_bug.py")
INFERRED = os.path.join(CASES, "inferred_input.py")


def _bug_in(module):
    """A function whose code lives in ``module``'s file and fails as a bug there would."""
    namespace = {}
    exec(compile("def bug(*args, **kwargs):\n    return ()[1]\n", module.__file__, "exec"), namespace)
    return namespace["bug"]


@pytest.mark.parametrize("module, name, path", [
    (rules, "_layer_input", LENET_BUG),  # a rule turning an event into a diagnostic
    (checks, "check_layer", LENET_BUG),  # a check run inside the user's forward
    (checks, "check_loss_call", os.path.join(CASES, "loss_in_forward.py")),
    (infer, "_solve", INFERRED),  # inference, which used to end as SC903 "needs input shape"
    (infer, "find_layout", INFERRED),
])
def test_a_bug_in_shapecheck_is_an_internal_error(monkeypatch, module, name, path):
    if module is rules:
        monkeypatch.setitem(rules._BUILDERS, "layer_input", _bug_in(rules))
    else:
        monkeypatch.setattr(module, name, _bug_in(module))
    with pytest.raises(InternalError, match="IndexError: tuple index out of range") as raised:
        api.check_file(path)
    assert isinstance(raised.value.__cause__, IndexError)


def test_the_command_line_prints_one_line_and_exits_two(monkeypatch, capsys):
    monkeypatch.setattr(checks, "check_layer", _bug_in(checks))
    code = main([LENET_BUG, "--no-color", "--no-sandbox"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.splitlines() == ["shapecheck: internal error: IndexError: tuple index out of range (a bug in "
                                "shapecheck: please report it with the file; run with --debug for the traceback)"]


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setattr(checks, "check_layer", _bug_in(checks))
    with pytest.raises(InternalError) as raised:
        main([LENET_BUG, "--debug", "--no-sandbox"])
    assert isinstance(raised.value.__cause__, IndexError)


def test_check_of_a_model_object(monkeypatch):
    from test_api import Small

    monkeypatch.setattr(checks, "check_layer", _bug_in(checks))
    with pytest.raises(InternalError):
        shapecheck.check(Small(), (2, 3, 32, 32))


# -- whose exception is it ------------------------------------------------------------------
def _raise_in_user_code(source: str):
    namespace = {}
    exec(compile(source, "/tmp/user_model.py", "exec"), namespace)
    try:
        usercode.call_user(namespace["f"])
    except Exception as exc:
        return exc
    raise AssertionError("no exception")


def test_exceptions_raised_by_user_code_are_the_users():
    assert not usercode.raised_in_shapecheck(_raise_in_user_code("def f():\n    return (1,)[3]\n"))
    assert not usercode.raised_in_shapecheck(_raise_in_user_code(
        "import torch\ndef f():\n    return torch.ones(2) + torch.ones(3)\n"))


def test_torch_called_through_the_boundary_is_the_users():
    import torch

    with pytest.raises(RuntimeError) as raised:
        usercode.call_user(torch.cat, [torch.ones(2, 3), torch.ones(2, 4)])
    assert not usercode.raised_in_shapecheck(raised.value)


def test_exceptions_raised_in_shapecheck_are_ours():
    with pytest.raises(IndexError) as raised:
        checks._with_operand((), {}, 5, None)
    assert usercode.raised_in_shapecheck(raised.value)


def test_a_stand_in_for_torch_raises_the_users_error():
    with pytest.raises(RuntimeError) as raised:
        raise usercode.StandInError("input.size(-1) must be equal to input_size")
    assert not usercode.raised_in_shapecheck(raised.value)
