"""The worker process: imports torch once, then checks file after file under the guard.

Started by `pool.Worker` as `python -m shapecheck.worker.child IN OUT DUMP MEMORY_MB`: IN and OUT
are the pipe descriptors of the channel, DUMP a file for the stack dump the parent asks for
(SIGUSR1) before it kills a check that ran past its deadline. The user's prints go nowhere:
standard input, output and error are /dev/null once the worker is ready.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import traceback
from dataclasses import replace

from . import channel


def main(argv: list[str]) -> None:
    read_fd, write_fd, dump_path, memory_mb = int(argv[0]), int(argv[1]), argv[2], int(argv[3])
    _warm_up()
    _settle_heap()
    from .sandbox import Guard

    guard = Guard(lambda message: channel.send(write_fd, message))
    dump = open(dump_path, "w")  # noqa: SIM115 - kept open for faulthandler
    faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)
    _silence(debug=bool(os.environ.get("SHAPECHECK_DEBUG")))
    guard.install(memory_mb)
    channel.send(write_fd, {"event": "ready", "pid": os.getpid()})
    reader = channel.Reader(read_fd)
    while True:
        request = reader.receive()
        if request is None or request.get("op") == "exit":
            _leave(0)
        channel.send(write_fd, _serve(request, guard, write_fd))


_WARM_UP = """
import torch.nn as nn


class WarmUp(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(self.conv(x).view(-1, 8))
"""


def _warm_up() -> None:
    """A first check of a small buggy model, before the guard: torch, fake tensors, symbolic
    shapes, libcst and the fix proofs are all loaded once here, not inside a user's deadline."""
    import tempfile

    from .. import api
    from ..config import Settings

    with tempfile.TemporaryDirectory(prefix="shapecheck-warm-") as folder:
        try:
            api.check_source(_WARM_UP, os.path.join(folder, "warm_up.py"), Settings(inputs=("2,1,4,4",)))
        except Exception:  # noqa: BLE001 - a failure here shows again, and is reported, in the first real check
            pass


def _settle_heap() -> None:
    """What torch and the warm-up left (some 300,000 objects, all long-lived) leaves the garbage
    collector's view: a full collection in the middle of a check walked all of it (a second on a
    busy machine). Young objects are looked at every 10,000 allocations rather than 700: most
    die young on their own, and a check allocates many."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _silence(debug: bool) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if debug else (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _serve(request: dict, guard, write_fd: int) -> dict:
    from .. import api
    from ..config import Settings
    from ..errors import InternalError, UsageError, UserCodeStopped

    path = request["path"]

    def observer(phase: str, model: str, line) -> None:
        guard.active = False
        channel.send(write_fd, {"event": "phase", "phase": phase, "model": model, "line": line})
        guard.active = True

    settings = replace(Settings.from_dict(request["settings"]), observer=observer)
    guard.user_roots = tuple(request.get("roots") or (os.path.dirname(os.path.abspath(path)) + os.sep,))
    guard.active = True
    try:
        report = api.check_source(request["source"], path, settings)
        return {"event": "done", "report": report.to_dict()}
    except UsageError as exc:
        return {"event": "usage", "message": str(exc)}
    except (UserCodeStopped, SystemExit, KeyboardInterrupt) as exc:  # escaped the model it came from
        channel.send(write_fd, {"event": "stopped", "message": str(exc) or type(exc).__name__})
        _leave(0)
    except Exception as exc:  # a bug in shapecheck
        text = str(exc) if isinstance(exc, InternalError) else f"{type(exc).__name__}: {exc}"
        return {"event": "internal", "message": text, "traceback": traceback.format_exc()}
    finally:
        guard.active = False


def _leave(code: int) -> None:
    import posix

    posix._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
