"""Source files read and written as Python reads them: encoding, BOM, line breaks.

Python decodes a file with the encoding of its coding line (PEP 263) or UTF-8, and refuses
bytes that do not decode. Its line breaks are ``\\r\\n``, ``\\r`` and ``\\n`` only: a form
feed, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028`` and ``\\u2029`` sit inside a line (unlike
``str.splitlines``). Lines are 1-based and columns count characters, as libcst counts them.

The text of a :class:`SourceText` keeps the file's own line breaks, so writing it back with
:func:`write_fixed` changes no byte outside the edited spans.
"""

from __future__ import annotations

import codecs
import functools
import re
import tokenize
from dataclasses import dataclass

_BREAK = re.compile(r"(\r\n|\r|\n)")
_BYTE_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)?")


class SourceError(ValueError):
    """Bytes Python would refuse (or text the file's encoding cannot hold), with where if known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class SourceText:
    """A file's text as Python decodes it, and how to encode it back.

    ``text`` keeps the file's line breaks and has no BOM; ``encoding`` is a codec name
    ("utf-8", "iso-8859-1"); ``bom``: the file starts with a UTF-8 byte order mark.
    """

    text: str
    encoding: str = "utf-8"
    bom: bool = False
    path: str = ""

    def encode(self, text: str) -> bytes:
        """``text`` as bytes of this file's encoding, BOM included; SourceError if it cannot be."""
        try:
            body = text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            line, column = _place(text[:exc.start])
            raise SourceError(f"{text[exc.start]!r} cannot be written in the file's encoding "
                              f"({self.encoding})", line, column) from None
        return (codecs.BOM_UTF8 if self.bom else b"") + body


def read_source(path: str) -> SourceText:
    """Read a file as Python would; SourceError for bytes it refuses, OSError as raised."""
    with open(path, "rb") as handle:
        data = handle.read()
    return decode_source(data, path)


def decode_source(data: bytes, path: str = "") -> SourceText:
    """Decode a file's bytes with its declared encoding (PEP 263), BOM removed."""
    bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8):] if bom else data
    encoding = _declared_encoding(data)
    try:
        return SourceText(body.decode(encoding), encoding, bom, path)
    except UnicodeDecodeError as exc:
        raise _undecodable(body, encoding, exc) from None


def _declared_encoding(data: bytes) -> str:
    head = _BYTE_LINE.findall(data)[:2]
    try:
        encoding, _ = tokenize.detect_encoding(functools.partial(next, iter(head), b""))
    except SyntaxError as exc:
        try:
            b"".join(head).decode("utf-8")
        except UnicodeDecodeError:  # no coding line, and not UTF-8: decoding says where
            return "utf-8"
        raise SourceError(f"cannot use the coding line: {exc}", 1 if b"coding" in head[0] else 2, 0) from None
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _undecodable(body: bytes, encoding: str, exc: UnicodeDecodeError) -> SourceError:
    line, column = _place(body[:exc.start].decode(encoding, errors="replace"))
    message = (f"byte 0x{body[exc.start]:02x} is not valid {encoding} ({exc.reason}); save the file "
               f"as UTF-8 or declare its encoding in a coding line (PEP 263)")
    return SourceError(message, line, column)


def _place(before: str) -> tuple[int, int]:
    """(line, column) of the character that follows ``before``."""
    parts = _BREAK.split(before)
    return len(parts) // 2 + 1, len(parts[-1])


def split_lines(text: str, keepends: bool = False) -> list[str]:
    """The lines of ``text`` at Python's line breaks only (\\r\\n, \\r, \\n); like
    ``str.splitlines``, no empty last line after a final break."""
    parts = _BREAK.split(text)
    ends = parts[1::2] + [""]
    lines = [line + end if keepends else line for line, end in zip(parts[0::2], ends)]
    return lines[:-1] if parts[-1] == "" else lines


def universal_lines(text: str) -> list[str]:
    """The lines as Python's universal newlines give them, each ending in "\\n" (for
    ``linecache`` and ``tokenize``)."""
    return [line + "\n" for line in split_lines(text)]


def char_column(line: str, byte_offset: int) -> int:
    """The character column of an ``ast`` col_offset (a UTF-8 byte offset) in ``line``."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def write_fixed(path: str, original: SourceText, new_text: str) -> None:
    """Write ``new_text`` over ``path`` with the encoding and BOM of ``original``.

    Line breaks are whatever ``new_text`` holds (the file's own, outside the edits). The
    bytes are made before the file is opened, so a text the encoding cannot hold changes
    nothing; OSError (a read-only file) as raised by ``open``.
    """
    data = original.encode(new_text)
    with open(path, "wb") as handle:
        handle.write(data)
