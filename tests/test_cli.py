"""The command line: exit codes, formats, bad input, explain, and the golden report."""

import json
import os
import re

import pytest

from shapecheck.frontends.cli import main

from conftest import CASES, EXAMPLES

LENET_BUG = os.path.join(EXAMPLES, "lenet_bug.py")


@pytest.fixture(autouse=True)
def _shared_worker(worker, monkeypatch):
    """Every `main` call of these tests reuses the session's warm worker."""
    monkeypatch.setitem(SHARED, "worker", worker)


SHARED: dict = {}


def run(capsys, *argv):
    code = main(list(argv), worker=SHARED.get("worker"))
    out, err = capsys.readouterr()
    return code, out, err


def test_golden_text_report(capsys, golden, monkeypatch):
    monkeypatch.chdir(os.path.dirname(EXAMPLES))
    code, out, _ = run(capsys, "examples/lenet_bug.py", "--no-color")
    assert code == 1
    golden("lenet_bug.txt", out)


def test_clean_model_exits_zero(capsys):
    code, out, _ = run(capsys, os.path.join(EXAMPLES, "lenet.py"), "-q")
    assert code == 0
    assert "0 errors, 0 warnings in 1 model checked" in out


def test_concise_format(capsys):
    code, out, _ = run(capsys, LENET_BUG, "--format", "concise")
    assert code == 1
    lines = out.strip().splitlines()
    assert lines == [
        f"{LENET_BUG}:17:30: SC101 `fc1` expects 400 input features (in_features=16 * 5 * 5) but receives 576 = 16×6×6",
        f"{LENET_BUG}:24:13: SC201 `x.view(-1, 16 * 5 * 5)` cannot reshape 16×16×6×6 (9216 elements) into "
        f"(-1, 400): 9216 is not a multiple of 400",
    ]


def test_json_format(capsys):
    code, out, _ = run(capsys, LENET_BUG, "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["version"] == 2
    model = data["models"][0]
    assert (model["name"], model["line"], model["input_source"], model["status"]) == ("Net", 12, "hint", "checked")
    assert model["input_shapes"] == [[16, 1, 32, 32]]
    fc1 = next(layer for layer in model["layers"] if layer["name"] == "fc1")
    assert (fc1["type"], fc1["line"], fc1["input_shapes"], fc1["output_shapes"]) == ("Linear", 25, [[16, 576]], [[16, 120]])
    first = data["diagnostics"][0]
    assert {k: first[k] for k in ("code", "severity", "line", "column", "end_line", "end_column", "model")} == {
        "code": "SC101", "severity": "error", "line": 17, "column": 30, "end_line": 17, "end_column": 40,
        "model": "Net"}
    assert first["fix"]["edits"][0]["new_text"] == "16 * 6 * 6"
    assert first["fix"]["applicability"] == "safe"


def test_input_flag_overrides_hint(capsys):
    code, out, _ = run(capsys, os.path.join(EXAMPLES, "lenet.py"), "--input", "4,1,28,28", "--format", "json")
    data = json.loads(out)
    assert data["models"][0]["input_shapes"] == [[4, 1, 28, 28]]
    assert data["models"][0]["input_source"] == "cli"
    # 28x28 gives a 16x5x5 map: fc1 (576) no longer fits
    assert code == 1 and data["diagnostics"][0]["code"] == "SC101"
    assert "receives 400 = 16×5×5" in data["diagnostics"][0]["message"]


def test_syntax_error_is_a_diagnostic(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\n\nclass Net(torch.nn.Module:\n    pass\n")
    code, out, _ = run(capsys, str(bad), "--format", "concise")
    assert code == 1
    assert out.startswith(f"{bad}:3:") and "SC901" in out


def test_a_missing_import_without_models_is_a_warning_not_an_error(tmp_path, capsys):
    bad = tmp_path / "needs.py"
    bad.write_text("import torch\nfrom not_a_real_package_xyz import Net\n\nmodel = Net()\n")
    code, out, _ = run(capsys, str(bad), "--format", "concise")
    assert code == 0 and f"{bad}:2:" in out and "SC907" in out and "not_a_real_package_xyz" in out
    assert "not installed" in out and "SC902" not in out  # a warning about the environment


def test_a_missing_import_is_a_warning_and_models_are_still_checked(tmp_path, capsys):
    path = tmp_path / "train.py"
    body = ("import torch.nn as nn\nimport not_a_real_package_xyz\n\n\n# shapecheck: input=(2, 4)\n"
            "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.fc = nn.Linear(5, 3)\n{extra}\n    def forward(self, x):\n        return self.fc(x)\n")
    path.write_text(body.format(extra=""))
    code, out, _ = run(capsys, str(path), "--format", "concise")
    lines = out.strip().splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[0].startswith(f"{path}:2:1: SC907 cannot import not_a_real_package_xyz")
    assert lines[1].startswith(f"{path}:9:") and "SC101" in lines[1]  # the model was checked
    path.write_text(body.format(extra="        self.run = not_a_real_package_xyz.init()\n"))
    code, out, _ = run(capsys, str(path), "--format", "concise")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2 and all("SC907" in line for line in lines)
    assert lines[1].startswith(f"{path}:10:") and "`not_a_real_package_xyz` comes from `not_a_real_package_xyz`" in lines[1]


def test_a_file_without_models_is_a_note_and_exits_zero(tmp_path, capsys):
    empty = tmp_path / "plain.py"
    empty.write_text("x = 1\n")
    code, out, _ = run(capsys, str(empty), "--format", "concise")
    assert code == 0 and out == f"{empty}:1:1: SC908 no nn.Module model is defined or built in this file; nothing to check\n"
    (tmp_path / "empty.py").write_text("")
    code, out, _ = run(capsys, str(tmp_path / "empty.py"), "--format", "concise")
    assert code == 0 and "SC908" in out


@pytest.mark.parametrize("argv, needle", [
    (["does_not_exist.py"], "no such file"),
    ([LENET_BUG, "--input", "16,a,3"], "input shape"),
    ([LENET_BUG, "--format", "xml"], "invalid choice"),
    ([LENET_BUG, "--model", "Nett"], "no model named Nett; the file has Net"),
])
def test_usage_errors_exit_two(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and "Traceback" not in err


def test_constructor_arguments(tmp_path, capsys):
    path = tmp_path / "args.py"
    path.write_text(
        "import torch.nn as nn\n\n"
        "# shapecheck: input=(2, 8)\n"
        "class Head(nn.Module):\n"
        "    def __init__(self, width, n_classes):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(width, n_classes)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n")
    code, out, _ = run(capsys, str(path), "--format", "concise")
    assert code == 0 and "SC904" in out and "--init width=VALUE --init n_classes=VALUE" in out
    code, out, _ = run(capsys, str(path), "--init", "width=8", "--init", "n_classes=3", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["models"][0]["output_shapes"] == [[2, 3]]
    code, out, _ = run(capsys, str(path), "--init", "width=6", "--init", "n_classes=3", "--format", "concise")
    assert code == 1 and "`fc` expects 6 input features (in_features=width) but receives 8 (input 2×8)" in out


def test_model_without_input_is_listed_not_checked(tmp_path, capsys):
    path = tmp_path / "noinput.py"
    path.write_text("import torch.nn as nn\n\nclass Net(nn.Module):\n    def forward(self, x):\n        return x\n")
    code, out, _ = run(capsys, str(path), "--format", "json")
    data = json.loads(out)
    assert data["models"][0]["status"] == "not_checked"
    assert data["diagnostics"][0]["code"] == "SC903" and data["diagnostics"][0]["severity"] == "info"


def test_constructor_error_is_reported_at_its_line(tmp_path, capsys):
    path = tmp_path / "gn.py"
    path.write_text("import torch.nn as nn\n\n# shapecheck: input=(2, 16, 8, 8)\nclass Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        self.gn = nn.GroupNorm(3, 16)\n\n"
                    "    def forward(self, x):\n        return self.gn(x)\n")
    code, out, _ = run(capsys, str(path), "--format", "concise")
    assert code == 1 and f"{path}:7:" in out and "SC905" in out and "divisible" in out


def test_explain(capsys):
    code, out, _ = run(capsys, "explain", "SC101")
    assert code == 0 and out.startswith("SC101 linear-in-features (error)")
    code, _, err = run(capsys, "explain", "SC999")
    assert code == 2 and "unknown code" in err


def test_suppression_comment(tmp_path, capsys):
    text = open(os.path.join(CASES, "kernel_too_large.py")).read().replace("# expect: SC110", "# shapecheck: ignore[SC110]")
    path = tmp_path / "k.py"
    path.write_text(text)
    code, out, _ = run(capsys, str(path), "--format", "concise")
    assert code == 0 and out == ""


def test_verify_command_on_an_example(capsys):
    code, out, _ = run(capsys, "verify", os.path.join(EXAMPLES, "lenet.py"), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["ok"]
    rows = data["reports"][0]["checks"]
    assert {r["impl"] for r in rows} == {"naive", "shift_add", "im2col", "toeplitz", "fft", "winograd"}
    assert {r["layer"] for r in rows} == {"conv1", "conv2", "(model)"}
    assert {r["dtype"] for r in rows} == {"float64", "float32"}
    assert all(r["status"] == "pass" for r in rows)


def test_verify_tables_written_to_a_file_keep_every_number_whole(capsys):
    code, out, _ = run(capsys, "verify", os.path.join(EXAMPLES, "lenet.py"), "--impl", "naive")
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("│ float")]
    assert len(rows) == 8 and all(len(line) <= 160 for line in rows)
    assert not any("…" in line for line in rows)
    assert all(len(re.findall(r"\d\.\d\de[-+]\d\d", line)) >= 3 for line in rows)


def test_verify_says_why_a_model_was_not_built(tmp_path, capsys):
    path = tmp_path / "upscale.py"
    path.write_text("import torch.nn as nn\n\n\nclass Upscaler(nn.Module):\n"
                    "    def __init__(self, factor):\n        super().__init__()\n"
                    "        self.conv = nn.Conv2d(1, factor ** 2, 3, padding=1)\n"
                    "        self.shuffle = nn.PixelShuffle(factor)\n\n"
                    "    def forward(self, x):\n        return self.shuffle(self.conv(x))\n")
    code, _, err = run(capsys, "verify", str(path), "--impl", "im2col")
    assert code == 2
    assert "Upscaler: Upscaler needs the constructor argument factor: pass it with --init factor=VALUE" in err
    code, out, _ = run(capsys, "verify", str(path), "--impl", "im2col", "--init", "factor=2", "--input", "1,1,4,4")
    assert code == 0 and "all implementations match torch" in out


def test_verify_takes_an_inferred_input_at_a_batch_of_two_when_the_model_runs_there():
    import torch
    from torch import nn

    from shapecheck.api import LoadedModel, _verify_arguments
    from shapecheck.source.inputs import InputSpec

    class Pooled(nn.Module):
        def __init__(self, batch=None):
            super().__init__()
            self.conv, self.batch = nn.Conv2d(3, 4, 3), batch

        def forward(self, x):
            y = self.conv(x)
            return y.reshape(self.batch, 4, 4, 4) if self.batch else y.flatten(1)

    def found(model, source):
        return LoadedModel(name="M", model=model, inputs=(InputSpec((8, 3, 6, 6)),), input_source=source)

    assert _verify_arguments(found(Pooled(), "inferred"), "m.py", torch) == [(2, 3, 6, 6)]
    assert _verify_arguments(found(Pooled(), "cli"), "m.py", torch) == [(8, 3, 6, 6)]
    assert _verify_arguments(found(Pooled(batch=8), "inferred"), "m.py", torch) == [(8, 3, 6, 6)]


def test_verify_cuda_without_a_gpu_is_a_usage_error(capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, _, err = run(capsys, "verify", os.path.join(EXAMPLES, "lenet.py"), "--device", "cuda")
    assert code == 2 and "cuda" in err.lower()


def test_verify_a_model_that_does_not_run_is_a_usage_error(capsys):
    code, _, err = run(capsys, "verify", LENET_BUG, "--impl", "im2col")
    assert code == 2
    assert "Net does not run in torch at input 16×1×32×32" in err and "shapecheck" in err


def test_plain_ignore_silences_every_code_on_its_line(tmp_path, capsys):
    text = open(LENET_BUG).read().replace("self.fc1 = nn.Linear(16 * 5 * 5, 120)",
                                          "self.fc1 = nn.Linear(16 * 5 * 5, 120)  # shapecheck: ignore")
    path = tmp_path / "lenet.py"
    path.write_text(text)
    code, out, _ = run(capsys, str(path), "--format", "concise")
    assert code == 1 and "SC101" not in out and "SC201" in out


def _net(width: int) -> str:
    return ("import torch.nn as nn\n\n# shapecheck: input=(2, 4)\nclass Net(nn.Module):\n    def __init__(self):\n"
            f"        super().__init__()\n        self.fc = nn.Linear({width}, 2)\n\n"
            "    def forward(self, x):\n        return self.fc(x)\n")


def test_a_folder_is_walked_and_reported_as_one_document(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool.shapecheck]\nexclude = ["scratch/*"]\n')
    for folder in ("pkg", ".hidden", "venv_like", "build", "scratch"):
        (tmp_path / folder).mkdir()
    (tmp_path / "venv_like" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "pkg" / "good.py").write_text(_net(4))
    (tmp_path / "pkg" / "bad.py").write_text(_net(5))
    (tmp_path / "pkg" / "helpers.py").write_text("import torch\n\ndef scale(x):\n    return 2 * x\n")
    (tmp_path / "pkg" / "notes.py").write_text("x = 1\n")
    for skipped in (".hidden", "venv_like", "build", "scratch"):
        (tmp_path / skipped / "model.py").write_text(_net(7))
    code, out, _ = run(capsys, str(tmp_path), "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert [f["path"] for f in data["files"]] == [str(tmp_path / "pkg" / "bad.py"), str(tmp_path / "pkg" / "good.py")]
    assert [(d["code"], d["path"]) for d in data["diagnostics"]] == [("SC101", str(tmp_path / "pkg" / "bad.py"))]
    assert data["summary"] == {"files": 2, "models": 2, "checked": 2, "partial": 0, "not_checked": 0,
                               "errors": 1, "warnings": 0, "notes": 0}


def test_several_files_give_one_concise_stream(tmp_path, capsys):
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text(_net(5))
    second.write_text(_net(6))
    code, out, _ = run(capsys, str(first), str(second), "--format", "concise")
    assert code == 1
    assert [line.split(": ")[0] for line in out.strip().splitlines()] == [f"{first}:7:29", f"{second}:7:29"]


def test_without_the_sandbox_the_check_runs_in_process(tmp_path, capsys):
    path = tmp_path / "a.py"
    path.write_text(_net(5))
    code, out, _ = run(capsys, str(path), "--format", "concise", "--no-sandbox")
    assert code == 1 and "SC101" in out


def test_parallel_jobs_keep_the_order_of_the_files(tmp_path, capsys):
    paths = []
    for index, width in enumerate((5, 4, 6)):
        path = tmp_path / f"m{index}.py"
        path.write_text(_net(width))
        paths.append(str(path))
    code = main(paths + ["--format", "concise", "-j", "2"])
    out = capsys.readouterr().out
    assert code == 1
    assert [line.split(":")[0] for line in out.strip().splitlines()] == [paths[0], paths[2]]


def test_a_progress_bar_only_on_a_terminal(tmp_path):
    import pty
    import subprocess
    import sys
    import threading

    for index in range(2):
        (tmp_path / f"m{index}.py").write_text(_net(4))
    leader, follower = pty.openpty()
    shown = []

    def drain():  # a terminal's buffer is small: read while the command runs
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    run = subprocess.run([sys.executable, "-m", "shapecheck.frontends.cli", str(tmp_path), "-j", "2", "-q"],
                         stdout=subprocess.PIPE, stderr=follower, timeout=600)
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    text = b"".join(shown)
    assert run.returncode == 0
    assert b"models checked" in text and b"2/2" in text
    assert b"models checked" not in run.stdout


@pytest.mark.parametrize("body, line", [
    ("class Net(nn.Module):\n    def forward(self, x, x):\n        return x\n", 4),
    ("layer = nn.Conv2d(3, 4, 3, stride=1, stride=2)\n", 3),
    ("return 1\n", 3),
])
def test_what_only_the_compiler_refuses_is_a_syntax_error(tmp_path, capsys, body, line):
    path = tmp_path / "bad.py"
    path.write_text("import torch.nn as nn\n\n" + body)
    code, out, err = run(capsys, str(path), "--format", "concise")
    assert code == 1 and "internal error" not in err
    assert out.startswith(f"{path}:{line}:") and " SC901 " in out
