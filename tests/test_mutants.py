"""Real torch is the oracle: change one number in a layer of a working model, and shapecheck
reports an error exactly when torch fails to build or run the mutant."""

import os

import libcst as cst
import pytest
import torch

from shapecheck import api
from shapecheck.diagnostics import Severity

from conftest import CASES, EXAMPLES
from helpers import load_classes, run_real

SOURCES = [os.path.join(EXAMPLES, "lenet.py"), os.path.join(EXAMPLES, "resnet_small.py"),
           os.path.join(CASES, "common_architectures.py")]


class _Numbers(cst.CSTVisitor):
    """Integer literals that are arguments of `nn.X(...)` calls."""

    def __init__(self):
        self.found = []
        self.depth = 0

    def visit_Call(self, node):
        func = node.func
        self.depth += isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "nn"

    def leave_Call(self, node):
        func = node.func
        self.depth -= isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "nn"

    def visit_Integer(self, node):
        if self.depth:
            self.found.append(node)


class _Bump(cst.CSTTransformer):
    def __init__(self, target):
        self.target = target

    def leave_Integer(self, original, updated):
        return updated.with_changes(value=str(int(updated.value) + 1)) if original is self.target else updated


def mutants():
    for path in SOURCES:
        module = cst.parse_module(open(path).read())
        visitor = _Numbers()
        module.visit(visitor)
        for i, node in enumerate(visitor.found):
            yield pytest.param(path, i, id=f"{os.path.basename(path)}-{i}")


def torch_fails(path: str, report) -> bool:
    try:
        specs = load_classes(path)
    except Exception:
        return True
    for model in report.models:
        if not model.input_shapes or model.name not in specs:
            continue
        try:
            from shapecheck.engine.discover import InputSpec
            run_real(specs[model.name], tuple(InputSpec(tuple(s), d) for s, d in zip(model.input_shapes, model.input_dtypes)))
        except (RuntimeError, ValueError, AssertionError, IndexError):
            return True
    return False


@pytest.mark.parametrize("path, index", list(mutants()))
def test_mutant_verdict_matches_torch(path, index, tmp_path):
    module = cst.parse_module(open(path).read())
    visitor = _Numbers()
    module.visit(visitor)
    mutant = tmp_path / os.path.basename(path)
    mutant.write_text(module.visit(_Bump(visitor.found[index])).code)
    report = api.check_file(str(mutant))
    errors = [d for d in report.diagnostics if d.severity is Severity.ERROR]
    assert bool(errors) == torch_fails(str(mutant), report), [d.message for d in errors]
