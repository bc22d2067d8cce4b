"""The guard around user code in the worker: what it may not do, and how long and how big.

`Guard.install()` adds an audit hook (`sys.addaudithook`) that refuses, while a check runs:
- network access: connecting, binding, sending, name look-ups, URL requests;
- starting processes: `os.system`, `subprocess`, `exec*`, `spawn*`, `posix_spawn`, `fork`,
  and signalling other processes;
- writing, creating, renaming or deleting files outside the worker's own temporary folder.
Each refusal raises `UserCodeStopped` (SC910) at the user's line and is also reported to the
parent as it happens, so an attempt that user code swallows is still shown. `os._exit` is
replaced so that an exit call stops only the model that made it (SC911).

Memory: `RLIMIT_AS` caps the worker's address space at what it holds after start-up plus
`memory_mb`. Time: the parent enforces the deadline (it kills the worker).

This protects against accidental side effects of model files (a download in a constructor,
a file written in forward, a training run that starts). It is not a security boundary:
code that wants to escape (ctypes, an already-open descriptor) can.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from typing import Callable

from ..errors import UserCodeStopped

_NETWORK = {
    "socket.connect": "connect to", "socket.bind": "listen on", "socket.sendto": "send data to",
    "socket.getaddrinfo": "look up", "socket.gethostbyname": "look up", "socket.gethostbyaddr": "look up",
    "urllib.Request": "download",
}
_PROCESS = {
    "os.system": "run a shell command", "subprocess.Popen": "start a process", "os.exec": "start a process",
    "os.posix_spawn": "start a process", "os.spawn": "start a process", "os.fork": "fork the process",
    "os.forkpty": "fork the process", "os.kill": "signal a process", "os.killpg": "signal processes",
    "pty.spawn": "start a process", "os.startfile": "open a file with another program",
}
_FILES = {
    "os.remove": "delete", "os.rename": "rename", "os.rmdir": "delete the folder", "os.mkdir": "create the folder",
    "os.chmod": "change the permissions of", "os.chown": "change the owner of", "os.truncate": "truncate",
    "os.link": "link", "os.symlink": "link", "os.utime": "touch", "shutil.rmtree": "delete the folder",
    "os.removexattr": "change", "os.setxattr": "change",
}
_WATCHED = frozenset(_NETWORK) | frozenset(_PROCESS) | frozenset(_FILES) | {"open"}  # exact event names
_CACHE_FOLDERS = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Guard:
    """Refuses side effects while `active`; `report(what, path, line, function)` hears each one."""

    def __init__(self, report: Callable[[dict], None]) -> None:
        self.report = report
        self.active = False
        self.user_roots: tuple[str, ...] = ()
        self.scratch = tempfile.mkdtemp(prefix="shapecheck-")
        self._allowed = (os.path.realpath(self.scratch) + os.sep, "/dev/null")

    def install(self, memory_mb: int) -> None:
        sys.dont_write_bytecode = True
        os.environ["TMPDIR"] = self.scratch
        for name in _CACHE_FOLDERS:  # torch's own caches go to the temporary folder too, even when
            os.environ[name] = os.path.join(self.scratch, name.lower())  # the parent named others
        tempfile.tempdir = self.scratch
        _limit_memory(memory_mb)
        os._exit = self._exit  # type: ignore[assignment]
        sys.addaudithook(self._hook())

    # -- the hook ----------------------------------------------------------------------
    def _hook(self) -> Callable[[str, tuple], None]:
        """The audit hook: a plain function, called for every event of the process (thousands a
        check: `id`, frame reads, compiling); a bound method costs several times more a call."""
        guard, watched = self, _WATCHED

        def hook(event: str, args: tuple) -> None:
            if event in watched and guard.active:  # the fast path: torch raises many other events
                what = guard._refused(event, args)
                if what is not None:
                    guard._stop(what)
        return hook

    def _refused(self, event: str, args: tuple) -> str | None:
        if event == "socket.getaddrinfo" and len(args) > 1 and args[1]:
            return f"tried to connect to {args[0]}:{args[1]}"  # the look-up before a connection
        if event in _NETWORK:
            return f"tried to {_NETWORK[event]} {_address(event, args)}"
        if event in _PROCESS:
            verb = _PROCESS.get(event) or "start a process"
            return f"tried to {verb}" + (f" ({_command(args)})" if _command(args) else "")
        if event == "open" and _writes(args) and not self._inside(args[0]):
            return f"tried to write {args[0]}"
        if event in _FILES and args and isinstance(args[0], (str, bytes, os.PathLike)) and not self._inside(args[0]):
            return f"tried to {_FILES[event]} {os.fsdecode(args[0])}"
        return None

    def _inside(self, path) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor
        full = os.path.realpath(os.fsdecode(path))
        return full == "/dev/null" or full.startswith(self._allowed[0])

    def _stop(self, what: str) -> None:
        path, line, function = self.user_frame()
        place = f"`{function}` (line {line}) " if line else ""
        message = f"{place}{what}: blocked"
        self.active = False  # the report itself must not trip the hook
        try:
            self.report({"event": "blocked", "message": message, "path": path, "line": line})
        finally:
            self.active = True
        raise UserCodeStopped(message, "SC910", path, line)

    def user_frame(self) -> tuple[str, int | None, str]:
        """The innermost frame that runs a file under one of the user's folders."""
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            if any(name.startswith(root) for root in self.user_roots) and "site-packages" not in name:
                return name, frame.f_lineno, frame.f_code.co_name
            frame = frame.f_back
        return "", None, ""

    def _exit(self, code: int = 0) -> None:
        path, line, function = self.user_frame()
        place = f" in `{function}` (line {line})" if line else ""
        raise UserCodeStopped(f"the code called os._exit({code}){place}: the model was not checked",
                              "SC911", path, line)


def _writes(args: tuple) -> bool:
    _, mode, flags = (tuple(args) + (None, None, None))[:3]
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _address(event: str, args: tuple) -> str:
    if event == "urllib.Request":
        return str(args[0]) if args else "a URL"
    target = args[1] if event.startswith("socket.") and event != "socket.getaddrinfo" and len(args) > 1 else args[0]
    if isinstance(target, tuple) and len(target) >= 2:
        return f"{target[0]}:{target[1]}"
    return str(target)


def _command(args: tuple) -> str:
    if not args:
        return ""
    first = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else args[0]
    if isinstance(first, (list, tuple)):
        first = " ".join(map(os.fsdecode, first[:4]))
    return os.fsdecode(first)[:80] if isinstance(first, (str, bytes)) else ""


def _limit_memory(memory_mb: int) -> None:
    if memory_mb <= 0:
        return
    try:
        with open("/proc/self/statm") as handle:
            held = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return  # no way to know what the process holds: no limit rather than a wrong one
    limit = held + memory_mb * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
