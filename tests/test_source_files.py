"""Files read as Python reads them, and `--fix` writing back every other byte unchanged:
encodings and coding lines, BOM, CRLF/CR/mixed line breaks, no final newline, form feeds and
Unicode line separators (not line breaks for Python), tabs, undecodable bytes, read-only files."""

import builtins
import io
import os
import re

import pytest
from hypothesis import given, strategies as st

from shapecheck import api
from shapecheck.errors import WriteError
from shapecheck.fixes.apply import diff
from shapecheck.frontends.cli import main
from shapecheck.source import SourceError, char_column, decode_source, read_source, split_lines

# One wrong Linear (16×6×6 = 576 features arrive, 400 expected): one SAFE fix, one edited span.
MODEL = """{header}
import torch.nn as nn
import torch.nn.functional as F

# shapecheck: input=(16, 1, 32, 32)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.label = "{label}"
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))
"""
BAD, GOOD = "nn.Linear(16 * 5 * 5", "nn.Linear(16 * 6 * 6"
LENET_BUG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "lenet_bug.py")


def model_text(header: str = "", label: str = "net", newline: str = "\n", final_newline: bool = True) -> str:
    text = MODEL.format(header=header, label=label)
    text = text if final_newline else text.rstrip("\n")
    return text.replace("\n", newline)


def write(tmp_path, data: bytes, name: str = "model.py") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def cli(capsys, worker):
    """`shapecheck ARGS...` on the session's warm worker: (exit code, stdout, stderr)."""
    def run(*argv):
        code = main(list(argv), worker=worker)
        out, err = capsys.readouterr()
        return code, out, err
    return run


def fc1_line(text: str) -> int:
    """The line of fc1 as Python numbers it."""
    import ast
    tree = ast.parse(text)
    return next(n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == 120)


def assert_fixed_in_place(before: bytes, after: bytes, old: bytes, new: bytes) -> None:
    """`after` is `before` with the one span `old` replaced: same bytes before and after it."""
    assert before.count(old) == 1
    start = before.index(old)
    assert after[:start] == before[:start]
    assert after[start:start + len(new)] == new
    assert after[start + len(new):] == before[start + len(old):]


def fix_and_compare(cli, tmp_path, data: bytes, encoding: str = "utf-8") -> bytes:
    path = write(tmp_path, data)
    code, out, err = cli(path, "--fix", "-q")
    assert (code, err) == (0, "")
    assert "applied 1 fix" in out
    with open(path, "rb") as handle:
        after = handle.read()
    assert_fixed_in_place(data, after, BAD.encode(encoding), GOOD.encode(encoding))
    return after


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_fix_keeps_crlf_and_cr_line_breaks(cli, tmp_path, newline):
    data = model_text(newline=newline).encode()
    after = fix_and_compare(cli, tmp_path, data)
    assert after.count(newline.encode()) == data.count(newline.encode())


def test_fix_keeps_mixed_line_breaks(cli, tmp_path):
    lines = model_text().split("\n")
    mixed = "".join(line + ("\n", "\r\n", "\r")[i % 3] for i, line in enumerate(lines[:-1]))
    fix_and_compare(cli, tmp_path, mixed.encode())


def test_fix_keeps_latin1_with_coding_line(cli, tmp_path):
    text = model_text(header="# -*- coding: latin-1 -*-\n# Größe der Schicht", label="café, naïve, jalapeño")
    data = text.encode("latin-1")
    code, out, _ = cli(write(tmp_path, data, "before.py"), "--format", "concise")
    assert code == 1 and f":{fc1_line(text)}:30: SC101 " in out
    after = fix_and_compare(cli, tmp_path, data, "latin-1")
    assert "jalapeño" in after.decode("latin-1") and b"\xc3" not in after


def test_fix_keeps_utf8_bom(cli, tmp_path):
    data = b"\xef\xbb\xbf" + model_text(label="résumé ✓").encode()
    after = fix_and_compare(cli, tmp_path, data)
    assert after.startswith(b"\xef\xbb\xbf") and not after.startswith(b"\xef\xbb\xbf" * 2)


def test_fix_keeps_missing_final_newline(cli, tmp_path):
    data = model_text(final_newline=False).encode()
    after = fix_and_compare(cli, tmp_path, data)
    assert after.endswith(b"flatten(1))))")


@pytest.mark.parametrize("extra", ["\x0c", "# one\u2028two\x1c three\x1d\x1e\x85", "LABEL = 'a\u2028b\u2029c'  # \x0c"])
def test_characters_that_are_no_line_break(cli, tmp_path, extra):
    """A line with a form feed or a Unicode line separator before the model shifts every finding
    by exactly that one line, messages (read from the source text) unchanged."""
    with open(LENET_BUG, encoding="utf-8") as handle:
        plain = handle.read()
    text = plain.replace("# shapecheck: input", extra + "\n# shapecheck: input")
    _, expected, _ = cli(LENET_BUG, "--format", "concise")
    code, out, _ = cli(write(tmp_path, text.encode()), "--format", "concise")
    shifted = [re.sub(r"^.*?:(\d+):", lambda m: f"{int(m.group(1)) + 1}:", line) for line in expected.splitlines()]
    assert code == 1 and [re.sub(r"^.*?:(\d+:)", r"\1", line) for line in out.splitlines()] == shifted


@pytest.mark.parametrize("header, label", [("\x0c", "net"), ("# one\u2028two\x85", "a\u2028b\u2029c")])
def test_fix_and_diff_after_characters_that_are_no_line_break(cli, tmp_path, header, label):
    text = model_text(header=header, label=label)
    path = write(tmp_path, text.encode())
    code, out, _ = cli(path, "--format", "concise")
    assert code == 1 and f"{path}:{fc1_line(text)}:30: SC101 " in out
    code, out, _ = cli(path, "--diff")
    assert f"-        self.fc1 = {BAD}, 120)\n+        self.fc1 = {GOOD}, 120)\n" in out
    fix_and_compare(cli, tmp_path, text.encode())


def test_tab_indented_caret_under_the_span(cli, tmp_path):
    text = re.sub(r"(?m)^((?:    )+)", lambda m: "\t" * (len(m.group(1)) // 4), model_text())
    code, out, _ = cli(write(tmp_path, text.encode()), "-q", "--no-color")
    assert code == 1
    shown = out.splitlines()
    row = next(i for i, line in enumerate(shown) if f"{fc1_line(text)} |" in line and BAD in line)
    source, caret = shown[row].expandtabs(), shown[row + 1].expandtabs()
    start = source.index("16 * 5 * 5")
    assert caret.index("^") == start and caret.rstrip().endswith("^" * len("16 * 5 * 5"))
    assert len(caret.rstrip()) == start + len("16 * 5 * 5")


@pytest.mark.parametrize("data, line, column", [
    (b'x = 1\n\ny = "caf\xe9"\n', 3, 8),  # latin-1 bytes and no coding line
    (b"# -*- coding: no-such-codec -*-\nx = 1\n", 1, 0),
    (b"\xef\xbb\xbf# coding: latin-1\n", 1, 0),  # a BOM says UTF-8, the coding line disagrees
])
@pytest.mark.parametrize("flags", [(), ("--no-sandbox",)])
def test_bytes_python_refuses_are_a_syntax_error(cli, tmp_path, data, line, column, flags):
    path = write(tmp_path, data + model_text().encode())
    with pytest.raises(SyntaxError):
        compile(data, path, "exec")
    code, out, _ = cli(path, "--format", "concise", *flags)
    assert code == 1
    assert out.startswith(f"{path}:{line}:{column + 1}: SC901 syntax error: ")
    assert "\ufffd" not in out


def test_read_only_file_keeps_the_report(cli, tmp_path, monkeypatch):
    data = model_text().encode()
    path = write(tmp_path, data)
    os.chmod(path, 0o444)
    if os.access(path, os.W_OK):  # root writes read-only files: refuse as the OS would for a user
        real_open = builtins.open

        def guarded(file, mode="r", *args, **kwargs):
            if str(file) == path and any(m in mode for m in "wax+"):
                raise PermissionError(13, "Permission denied", path)
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded)
    code, out, err = cli(path, "--fix", "--format", "concise")
    assert code == 1
    assert err == f"shapecheck: {path}: fixes not written: Permission denied\n"
    assert f"{path}:{fc1_line(data.decode())}:30: SC101 " in out
    with open(path, "rb") as handle:
        assert handle.read() == data


def test_write_fixes_refuses_text_the_encoding_cannot_hold(tmp_path):
    text = "# coding: latin-1\nx = 1\n"
    path = write(tmp_path, text.encode("latin-1"))
    with pytest.raises(WriteError, match=r"'✓' cannot be written in the file's encoding \(iso-8859-1\)"):
        api.write_fixes(path, text, text.replace("1", "'✓'"))
    with pytest.raises(WriteError, match="changed while it was checked"):
        api.write_fixes(path, "x = 2\n", "x = 3\n")
    assert open(path, "rb").read() == text.encode("latin-1")


def test_decode_source_names_the_encoding_and_strips_the_bom():
    source = decode_source(b"\xef\xbb\xbfx = '\xc3\xa9'\r\n", "m.py")
    assert (source.text, source.encoding, source.bom) == ("x = 'é'\r\n", "utf-8", True)
    source = decode_source(b"#!/usr/bin/env python\n# vim: set fileencoding=latin-1 :\nx = '\xe9'\n")
    assert source.text.endswith("\nx = 'é'\n") and (source.encoding, source.bom) == ("iso-8859-1", False)
    assert source.encode(source.text) == b"#!/usr/bin/env python\n# vim: set fileencoding=latin-1 :\nx = '\xe9'\n"


def test_undecodable_byte_is_placed_in_characters():
    with pytest.raises(SourceError) as caught:
        decode_source("a = 'é'\r\nb = 'é'\rc = '".encode() + b"\xff'\n")
    assert (caught.value.line, caught.value.column) == (3, 5)
    assert "byte 0xff is not valid utf-8" in caught.value.message


@given(st.text(alphabet="ab\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", max_size=30))
def test_split_lines_matches_universal_newlines(text):
    expected = [line.rstrip("\n") for line in io.StringIO(text, newline=None)]
    assert split_lines(text) == expected
    assert "".join(split_lines(text, keepends=True)) == text


def test_char_column_converts_ast_byte_offsets():
    import ast
    line = 'x = "été"; import os'
    node = ast.parse(line).body[1]
    assert node.col_offset == 13 and char_column(line, node.col_offset) == line.index("import")


def test_diff_marks_a_missing_final_newline():
    assert diff("m.py", "a\r\nb", "a\r\nc").endswith("-b\n\\ No newline at end of file\n+c\n"
                                                    "\\ No newline at end of file\n")


def test_read_source_of_the_example_is_its_text():
    with open(LENET_BUG, encoding="utf-8", newline="") as handle:
        assert read_source(LENET_BUG).text == handle.read()


def test_ignore_comment_after_a_form_feed_line(cli, tmp_path):
    text = model_text(header="\x0c").replace("5 * 5, 120)", "5 * 5, 120)  # shapecheck: ignore[SC101]")
    code, out, _ = cli(write(tmp_path, text.encode()), "--format", "concise")
    assert (code, out) == (0, "")
