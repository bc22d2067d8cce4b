"""Machine formats through the CLI: SARIF 2.1.0 and GitHub workflow annotations, one document per run."""

import json
import os
import re

import jsonschema
import pytest

from shapecheck.frontends.cli import main

from conftest import EXAMPLES, ROOT

SCHEMA = os.path.join(ROOT, "tests", "schemas", "sarif-2.1.0-subset.json")
OFFICIAL = os.environ.get("SARIF_SCHEMA")  # the standard's own schema file, where one is at hand


def _run(capsys, worker, *argv):
    code = main(list(argv), worker=worker)
    return code, capsys.readouterr().out


@pytest.fixture
def two_files(tmp_path):
    body = ("import torch.nn as nn\n\n# shapecheck: input=(2, 4)\nclass Net(nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.fc = nn.Linear({}, 2)\n\n    def forward(self, x):\n"
            "        return self.fc(x)\n")
    paths = []
    for name, width in (("a.py", 5), ("b.py", 4)):
        (tmp_path / name).write_text(body.format(width))
        paths.append(str(tmp_path / name))
    return paths


def test_sarif_is_one_valid_log_with_rules_locations_and_fixes(capsys, worker, monkeypatch):
    monkeypatch.chdir(os.path.dirname(EXAMPLES))
    code, out = _run(capsys, worker, "examples/lenet_bug.py", "examples/lenet.py", "--format", "sarif")
    log = json.loads(out)
    jsonschema.validate(log, json.load(open(SCHEMA)))
    if OFFICIAL:
        jsonschema.Draft4Validator(json.load(open(OFFICIAL))).validate(log)
    assert code == 1 and len(log["runs"]) == 1
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["SC101", "SC201"]
    assert run["tool"]["driver"]["rules"][0]["helpUri"].endswith("#diagnostic-codes")
    first = run["results"][0]
    assert (first["ruleId"], first["ruleIndex"], first["level"]) == ("SC101", 0, "error")
    location = first["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "examples/lenet_bug.py"},
                        "region": {"startLine": 17, "startColumn": 30, "endLine": 17, "endColumn": 40}}
    assert first["relatedLocations"][0]["physicalLocation"]["region"]["startLine"] == 25
    change = first["fixes"][0]["artifactChanges"][0]
    assert change["replacements"][0]["insertedContent"]["text"] == "16 * 6 * 6"
    assert change["replacements"][0]["deletedRegion"] == location["region"]


def test_sarif_fingerprints_survive_moved_lines(tmp_path, capsys, worker, two_files):
    _, out = _run(capsys, worker, two_files[0], "--format", "sarif")
    before = json.loads(out)["runs"][0]["results"][0]
    text = open(two_files[0]).read()
    open(two_files[0], "w").write("# a comment that moves every line\n\n" + text)
    _, out = _run(capsys, worker, two_files[0], "--format", "sarif")
    after = json.loads(out)["runs"][0]["results"][0]
    assert after["locations"][0]["physicalLocation"]["region"]["startLine"] == 9
    assert after["partialFingerprints"] == before["partialFingerprints"]


_COMMAND = re.compile(r"^::(error|warning|notice) (?P<props>[^:]*)::(?P<message>.*)$")


def _unescape(text: str) -> str:
    return text.replace("%0A", "\n").replace("%0D", "\r").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


def test_github_annotations_parse_back(capsys, worker, two_files):
    code, out = _run(capsys, worker, *two_files, "--format", "github")
    lines = out.strip().splitlines()
    assert code == 1 and len(lines) == 1
    match = _COMMAND.match(lines[0])
    assert match and match.group(1) == "error"
    props = dict(part.split("=", 1) for part in match.group("props").split(","))
    assert {k: _unescape(v) for k, v in props.items()} == {
        "file": two_files[0], "line": "7", "col": "29", "endLine": "7", "endColumn": "30",
        "title": "SC101 linear-in-features"}
    message = _unescape(match.group("message"))
    assert message.splitlines()[0] == "`fc` expects 5 input features but receives 4 (input 2×4)"
    assert "fix: Change `in_features` to `4`" in message


def test_a_clean_run_prints_an_empty_sarif_run_and_no_annotations(capsys, worker):
    path = os.path.join(EXAMPLES, "lenet.py")
    code, out = _run(capsys, worker, path, "--format", "sarif")
    assert code == 0 and json.loads(out)["runs"][0]["results"] == []
    code, out = _run(capsys, worker, path, "--format", "github")
    assert code == 0 and out == ""
