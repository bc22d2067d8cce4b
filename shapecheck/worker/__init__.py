"""The worker process that runs all user code, and the guard around it.

    from shapecheck.worker import Worker
    with Worker() as worker:
        report = worker.check_file("model.py")
"""

from .pool import Cancelled as Cancelled
from .pool import Worker as Worker

__all__ = ["Cancelled", "Worker"]
