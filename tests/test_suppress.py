"""The edit behind "ignore this line": the comment appended, or the code added to its list."""

import pytest

from shapecheck.suppress import ignore_edit, ignored_codes


@pytest.mark.parametrize("line, after", [
    ("        self.fc1 = nn.Linear(400, 120)", "        self.fc1 = nn.Linear(400, 120)  # shapecheck: ignore[SC101]"),
    ("x = self.fc(x)   \n", "x = self.fc(x)  # shapecheck: ignore[SC101]\n"),
    ("x = self.fc(x)  # a note", "x = self.fc(x)  # a note  # shapecheck: ignore[SC101]"),
    ("x = self.fc(x)  # shapecheck: ignore[SC201]", "x = self.fc(x)  # shapecheck: ignore[SC201, SC101]"),
    ("x = self.fc(x)  # shapecheck:ignore[ SC201 ,SC203]", "x = self.fc(x)  # shapecheck:ignore[SC201, SC203, SC101]"),
])
def test_the_line_then_ignores_the_code(line, after):
    start, end, text = ignore_edit(line, "SC101")
    assert line[:start] + text + line[end:] == after
    assert "SC101" in ignored_codes(after)


@pytest.mark.parametrize("line", ["x = self.fc(x)  # shapecheck: ignore", "x = self.fc(x) + \\"])
def test_no_edit_where_everything_is_ignored_or_a_comment_cannot_go(line):
    assert ignore_edit(line, "SC101") is None
