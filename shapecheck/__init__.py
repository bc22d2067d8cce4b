"""shapecheck: find shape bugs in PyTorch models before anything runs.

    import shapecheck
    report = shapecheck.check_file("model.py", inputs=["16,1,32,32"])
    report = shapecheck.check(model, (16, 3, 224, 224))
    shapecheck.assert_shapes(model, (16, 3, 224, 224), expect=("N", 1000))   # in a test
"""

from .api import check as check, check_file as check_file, check_source as check_source
from .diagnostics import Diagnostic as Diagnostic, Report as Report, Severity as Severity
from .frontends.assertions import assert_shapes as assert_shapes

__version__ = "0.1.0"


def gate(inputs=(), strict: bool = False, timeout: float | None = None):
    """At the top of a training script: check its models (and its local modules') once per run;
    on errors print them and exit 1 before any training starts."""
    from .frontends.gate import gate as check_then_continue

    return check_then_continue(inputs, strict, timeout)

__all__ = ["assert_shapes", "gate", "check", "check_file", "check_source", "Diagnostic", "Report", "Severity", "__version__"]
