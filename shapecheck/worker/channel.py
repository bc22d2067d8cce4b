"""Messages between the parent and the worker: length-prefixed JSON over a pipe.

Plain data only (dicts, lists, strings, numbers), so nothing the worker sends can run code
in the parent.
"""

from __future__ import annotations

import json
import os
import struct

_HEADER = struct.Struct("!I")


def send(fd: int, message: dict) -> None:
    data = json.dumps(message).encode("utf-8")
    _write_all(fd, _HEADER.pack(len(data)) + data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Reader:
    """Reads whole messages from a descriptor; `poll(timeout)` says whether one is ready."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def message(self) -> dict | None:
        """The next complete message already buffered, or None."""
        if len(self.buffer) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self.buffer)
        if len(self.buffer) < _HEADER.size + size:
            return None
        data = self.buffer[_HEADER.size:_HEADER.size + size]
        self.buffer = self.buffer[_HEADER.size + size:]
        return json.loads(data.decode("utf-8"))

    def fill(self) -> bool:
        """Read what is there (blocking for at least one byte); False at end of stream."""
        chunk = os.read(self.fd, 1 << 20)
        self.buffer += chunk
        return bool(chunk)

    def receive(self) -> dict | None:
        """Block until one message arrives; None at end of stream."""
        while True:
            found = self.message()
            if found is not None:
                return found
            if not self.fill():
                return None
