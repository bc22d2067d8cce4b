"""Exceptions that cross shapecheck's own boundaries.

    ShapecheckError
    └── UsageError      bad flags, missing files, bad --input/--init values: exit 2

Any other exception escaping `api` is a bug in shapecheck: the CLI prints one line and exits 2.

Failures of the *user's* code are never exceptions past `api`: they become diagnostics.
"""


class ShapecheckError(Exception):
    """Base class of shapecheck's own errors."""


class UsageError(ShapecheckError):
    """The command line or the API was used wrongly."""
