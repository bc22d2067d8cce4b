"""`assert_shapes`: shapecheck as an assertion in a test suite.

    from shapecheck import assert_shapes

    def test_net_shapes():
        assert_shapes(Net(), (16, 1, 32, 32), expect=("N", 10))

The model is checked in this process with meta/fake tensors (`api.check`): nothing runs for
real and no memory is used. It fails with plain text, each finding with its numbers and line.
"""

from __future__ import annotations

BATCH = "N"


def assert_shapes(model, *inputs, expect=None, strict: bool = False):
    """Check ``model`` at ``inputs`` (shapes or tensors, one per forward argument).

    Fails (AssertionError) on every ERROR finding (and WARNING with ``strict``), when the model
    could not be checked, and when ``expect`` (the output shape; "N" stands for the input's
    batch size; a list of shapes for several outputs) differs. Returns the Report.
    """
    from ..api import check
    from ..render.plain import findings_text

    if not inputs:
        raise TypeError("assert_shapes needs the input shape(s), e.g. assert_shapes(model, (16, 3, 32, 32))")
    report = check(model, *inputs)
    failing = ("error", "warning") if strict else ("error",)
    bad = [d for d in report.diagnostics if d.severity.value in failing]
    result = report.models[0]
    problems = [findings_text(report, bad)] if bad else []
    if result.status.value == "not_checked":
        problems.append(f"{result.name} was not checked: {result.reason}")
    if expect is not None and not bad:
        problems += _output_problem(result, expect)
    if problems:
        raise AssertionError(f"shapecheck: {result.name} at input {_shapes(result.input_shapes)}:\n"
                             + "\n".join(problems))
    return report


def _output_problem(result, expect) -> list[str]:
    batch = result.input_shapes[0][0] if result.input_shapes and result.input_shapes[0] else None
    wanted = [expect] if not expect or not isinstance(expect[0], (tuple, list)) else list(expect)
    resolved = [tuple(batch if size == BATCH else size for size in shape) for shape in wanted]
    actual = [tuple(s) for s in result.output_shapes[:len(resolved)]]
    if actual == resolved:
        return []
    return [f"expected output {_shapes(resolved)} (N = {batch}), got {_shapes(result.output_shapes)}"]


def _shapes(shapes) -> str:
    from ..render.plain import shapes_text

    return shapes_text(shapes)
