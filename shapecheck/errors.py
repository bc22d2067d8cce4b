"""Exceptions that cross shapecheck's own boundaries.

    ShapecheckError
    ├── UsageError      bad flags, missing files, bad --input/--init values: exit 2
    ├── InternalError   a bug in shapecheck itself: exit 2, with a request to report it
    └── WriteError      fixes not written (a read-only file): the report and exit code stand

    BaseException
    └── UserCodeStopped the user's code was stopped (a blocked side effect, an exit call):
                        the model it belongs to is "not checked", never an error

Failures of the *user's* code are never exceptions past `api`: they become diagnostics.
`UserCodeStopped` derives from BaseException so that neither the user's own `except
Exception` nor the engine's handlers for user errors can turn it into something else.
Any other exception raised in shapecheck's own code leaves `api` as an `InternalError`
(`internal_errors`), never as a finding on the user's line.
"""

from contextlib import contextmanager


class ShapecheckError(Exception):
    """Base class of shapecheck's own errors."""


class UsageError(ShapecheckError):
    """The command line or the API was used wrongly."""


class InternalError(ShapecheckError):
    """shapecheck failed on its own: a bug to report, never the user's error."""


class WriteError(ShapecheckError):
    """Fixes could not be written back; the file is unchanged and the findings still count."""


class UserCodeStopped(BaseException):
    """User code was stopped while shapecheck ran it.

    ``code``: the rule code that reports it (SC910 a blocked side effect, SC911 an exit call);
    ``line``/``path``: where in the user's files it happened, when known.
    """

    def __init__(self, message: str, code: str = "SC910", path: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.path = path
        self.line = line


class MissingPackage(UserCodeStopped):
    """User code used a name whose import failed (a package not installed where shapecheck
    runs): the model cannot be checked here (SC907), which is not a shape error."""

    def __init__(self, message: str, path: str = "", line: int | None = None, package: str = "") -> None:
        super().__init__(message, "SC907", path, line)
        self.name = package  # the package that is missing, as ImportError names it


@contextmanager
def internal_errors():
    """Turn any exception other than shapecheck's own errors into an InternalError (the
    original is its ``__cause__``, for ``--debug``)."""
    try:
        yield
    except ShapecheckError:
        raise
    except Exception as exc:
        raise InternalError(f"{type(exc).__name__}: {exc}") from exc
