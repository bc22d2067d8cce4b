"""The worker: user code runs in another process, refused side effects, deadlines, crashes.

Each case file has a model with a real shape bug (`Wrong`, SC101) that must still be reported
whatever the other models do.
"""

import os
import socket
import threading

import pytest

from shapecheck.config import Settings
from shapecheck.diagnostics import Report, Status

from conftest import CASES, EXAMPLES, ROOT

SANDBOX = os.path.join(ROOT, "tests", "models", "sandbox")


def _case(tmp_path, name: str, **replacements) -> str:
    text = open(os.path.join(SANDBOX, name), encoding="utf-8").read()
    for old, new in replacements.items():
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _by_model(report: Report) -> dict:
    out: dict = {}
    for d in report.diagnostics:
        out.setdefault(d.model, []).append(d)
    return out


class _Listener:
    """A TCP listener on loopback that counts the connections it accepts."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            self.accepted += 1
            connection.close()

    def close(self):
        self.running = False
        self.thread.join()
        self.socket.close()


def test_side_effects_are_refused_and_reported_at_their_lines(tmp_path, worker):
    marker = str(tmp_path / "marker")
    open(marker + ".keep", "w").close()
    listener = _Listener()
    try:
        path = _case(tmp_path, "side_effects.py", **{'"/nonexistent/marker"': repr(marker), "PORT = 9": f"PORT = {listener.port}"})
        report = worker.check_file(path, Settings(inputs=("3,4",)))
    finally:
        listener.close()
    assert listener.accepted == 0
    assert sorted(os.listdir(tmp_path)) == ["marker.keep", "side_effects.py"]  # nothing written, nothing deleted
    found = {d.model: (d.code, d.line, d.message) for d in report.diagnostics if d.code == "SC910"}
    assert found["Writes"] == ("SC910", 19, f"`__init__` (line 19) tried to write {marker}.open: blocked")
    assert found["Touches"][:2] == ("SC910", 33) and f"tried to touch {marker}.touch" in found["Touches"][2]
    assert found["Connects"] == ("SC910", 40, f"`__init__` (line 40) tried to connect to 127.0.0.1:{listener.port}: blocked")
    assert found["Shell"][:2] == ("SC910", 50) and "tried to run a shell command (touch " in found["Shell"][2]
    assert found["Spawns"][:2] == ("SC910", 63) and "tried to start a process (touch " in found["Spawns"][2]
    assert found["Swallows"] == ("SC910", 71, f"`__init__` (line 71) tried to delete {marker}.keep: blocked")
    assert all(d.severity.value == "info" for d in report.diagnostics if d.code == "SC910")
    status = {m.name: m.status for m in report.models}
    assert status["Swallows"] is Status.CHECKED  # the model caught the refusal and went on
    assert status["Writes"] is Status.NOT_CHECKED
    wrong = _by_model(report)["Wrong"]
    assert [(d.code, d.line) for d in wrong] == [("SC101", 83)]


def test_exits_crashes_and_hangs_cost_only_their_own_model(tmp_path, worker):
    path = _case(tmp_path, "stops.py")
    report = worker.check_file(path, Settings(inputs=("3,4",), timeout=4))
    codes = {d.model: (d.code, d.line) for d in report.diagnostics}
    assert codes["CallsExit"] == ("SC911", 12)
    assert codes["HardExit"] == ("SC911", 21)
    assert codes["Segfault"][0] == "SC913"
    assert codes["HangsInInit"][0] == "SC912" and codes["HangsInInit"][1] in (37, 38)
    assert codes["HangsInForward"][0] == "SC912" and codes["HangsInForward"][1] in (48, 49)
    assert codes["Wrong"] == ("SC101", 55)
    messages = {d.model: d.message for d in report.diagnostics}
    assert "SIGSEGV" in messages["Segfault"]
    assert messages["HangsInInit"].startswith("`HangsInInit` did not finish within 4 s: `__init__` (line 3")
    assert {m.name: m.status for m in report.models}["Wrong"] is Status.CHECKED
    assert report.exit_code() == 1
    assert worker.check_file(os.path.join(EXAMPLES, "lenet.py")).ok  # the worker came back


def test_a_hang_at_the_top_level_is_reported_for_the_file(tmp_path, worker):
    path = tmp_path / "top.py"
    path.write_text("import torch.nn as nn\n\nclass Net(nn.Module):\n    while True:\n        pass\n")
    report = worker.check_file(str(path), Settings(timeout=2))
    assert [d.code for d in report.diagnostics] == ["SC912"]
    assert report.diagnostics[0].line in (4, 5)  # the loop's test or its body, wherever the deadline lands
    assert report.diagnostics[0].message.startswith("loading the file did not finish within 2 s")


def test_cancel_from_another_thread_stops_the_check_and_the_worker_comes_back(tmp_path, worker):
    from shapecheck.worker import Cancelled

    path = tmp_path / "spin.py"
    path.write_text("import torch.nn as nn\n\n# shapecheck: input=2,3\nclass Spin(nn.Module):\n"
                    "    def forward(self, x):\n        while True:\n            pass\n")
    worker.check_file(os.path.join(EXAMPLES, "lenet.py"))  # warm
    outcome = []

    def check():
        try:
            outcome.append(worker.check_file(str(path), Settings(timeout=600)))
        except Cancelled as exc:
            outcome.append(exc)

    thread = threading.Thread(target=check)
    thread.start()
    thread.join(3)
    worker.cancel()
    thread.join(60)
    assert not thread.is_alive() and isinstance(outcome[0], Cancelled)
    report = worker.check_file(os.path.join(EXAMPLES, "lenet_bug.py"))
    assert [d.code for d in report.diagnostics] == ["SC101", "SC201"]


def test_reports_cross_the_process_boundary_as_plain_data(worker):
    from shapecheck.api import check_file

    for name in ("lenet_bug.py", "resnet_small.py", "dogs_cats_bug.py"):
        path = os.path.join(EXAMPLES, name)
        here = check_file(path)
        there = worker.check_file(path)
        assert there == here
        assert Report.from_dict(here.to_dict(), source=here.source) == here


def test_user_output_does_not_reach_the_terminal(tmp_path, worker, capfd):
    path = tmp_path / "loud.py"
    path.write_text("import sys\nimport torch.nn as nn\n\nprint('loading')\n\nclass Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        print('building')\n"
                    "        sys.stderr.write('to stderr')\n        self.fc = nn.Linear(4, 2)\n\n"
                    "    def forward(self, x):\n        print('forward')\n        return self.fc(x)\n")
    report = worker.check_file(str(path), Settings(inputs=("2,4",)))
    out, err = capfd.readouterr()
    assert report.ok and report.models[0].status is Status.CHECKED
    assert "building" not in out + err and "forward" not in out + err


def test_the_worker_guard_is_off_between_checks(worker, tmp_path):
    """shapecheck's own work in the worker (reading a config, the next file) is never refused."""
    (tmp_path / "pyproject.toml").write_text('[tool.shapecheck]\ninputs = { Net = [2, 4] }\n')
    path = tmp_path / "net.py"
    path.write_text("import torch.nn as nn\n\nclass Net(nn.Module):\n    def __init__(self):\n"
                    "        super().__init__()\n        self.fc = nn.Linear(4, 2)\n\n"
                    "    def forward(self, x):\n        return self.fc(x)\n")
    for _ in range(2):
        report = worker.check_file(str(path))
        assert report.models[0].input_source == "config" and report.ok and not report.diagnostics


def test_the_memory_limit_stops_one_model(tmp_path):
    from shapecheck.worker import Worker

    path = _case(tmp_path, "memory.py")
    with Worker(memory_mb=512) as small:
        report = small.check_file(path, Settings(inputs=("3,4",), memory_mb=512))
    codes = {d.model: (d.code, d.line, d.severity.value) for d in report.diagnostics}
    assert codes == {"Hungry": ("SC914", 9, "info"), "Wrong": ("SC101", 19, "error")}


def test_an_internal_error_in_the_worker_is_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    """A bug in shapecheck's own code, raised inside the worker, is never the user's finding.

    The fault is planted in the worker through a `sitecustomize` module on its PYTHONPATH."""
    from shapecheck.frontends.cli import main

    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(
        "import shapecheck.api\n\ndef broken(*args, **kwargs):\n    raise IndexError('tuple index out of range')\n\n"
        "shapecheck.api.run_rules = broken\n")
    monkeypatch.setenv("PYTHONPATH", str(plant))
    path = tmp_path / "net.py"
    path.write_text("import torch.nn as nn\n\nclass Net(nn.Module):\n    def forward(self, x):\n        return x\n")
    code = main([str(path), "--input", "2,3"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith(f"shapecheck: internal error: {path}: IndexError: tuple index out of range")
    assert "please report it" in err and "Traceback" not in err


def test_a_file_whose_only_model_hangs_gets_only_the_timeout(tmp_path, worker):
    path = tmp_path / "only.py"
    path.write_text("import torch.nn as nn\n\n\nclass Spins(nn.Module):\n    def __init__(self):\n"
                    "        super().__init__()\n        self.fc = nn.Linear(4, 2)\n\n    def forward(self, x):\n"
                    "        while True:\n            pass\n")
    report = worker.check_file(str(path), Settings(inputs=("2,4",), timeout=2))
    assert [(d.code, d.model) for d in report.diagnostics] == [("SC912", "Spins")]
    assert [(m.name, m.status) for m in report.models] == [("Spins", Status.NOT_CHECKED)]


def test_a_cache_folder_named_by_the_parent_does_not_stop_the_check(tmp_path, monkeypatch, capsys):
    """torch's compiler cache, once named in the parent's environment (importing it does), is
    moved into the worker's temporary folder: creating it is not a blocked side effect."""
    from shapecheck.frontends.cli import main

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "elsewhere"))
    copy = tmp_path / "lenet_bug.py"
    copy.write_text(open(os.path.join(EXAMPLES, "lenet_bug.py"), encoding="utf-8").read())
    assert main([str(copy), "--fix", "-q"]) == 0
    capsys.readouterr()
    assert not (tmp_path / "elsewhere").exists()
