"""Exceptions that cross shapecheck's own boundaries.

    ShapecheckError
    ├── UsageError      bad flags, missing files, bad --input/--init values: exit 2
    └── InternalError   a bug in shapecheck itself: exit 2 with a short message

Failures of the *user's* code are never exceptions past `api`: they become diagnostics.
"""


class ShapecheckError(Exception):
    """Base class of shapecheck's own errors."""


class UsageError(ShapecheckError):
    """The command line or the API was used wrongly."""


class InternalError(ShapecheckError):
    """shapecheck failed; not the user's fault."""
