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
__all__ = ["assert_shapes", "check", "check_file", "check_source", "Diagnostic", "Report", "Severity", "__version__"]
