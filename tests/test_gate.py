"""The pre-run gate: `shapecheck run script.py` and `shapecheck.gate()` start a script only
when its models (and those of the local modules it imports) are sound."""

import os
import subprocess
import sys

from shapecheck.frontends.cli import main

MODEL = ("import torch.nn as nn\n\n\n# shapecheck: input=(2, 4)\nclass Net(nn.Module):\n    def __init__(self):\n"
         "        super().__init__()\n        self.fc = nn.Linear({width}, 2)\n\n    def forward(self, x):\n"
         "        return self.fc(x)\n")
SCRIPT = ("import sys\nfrom models import Net\n\nif __name__ == '__main__':\n"
          "    open(sys.argv[1], 'w').write(' '.join(sys.argv[2:]))\n    sys.exit(int(sys.argv[2]))\n")


def _project(tmp_path, width: int) -> str:
    (tmp_path / "models.py").write_text(MODEL.format(width=width))
    (tmp_path / "train.py").write_text(SCRIPT)
    return str(tmp_path / "train.py")


def test_a_sound_script_starts_with_its_arguments_and_exit_code(tmp_path, capsys, worker):
    script = _project(tmp_path, 4)
    marker = tmp_path / "ran.txt"
    code = main(["run", script, "--", str(marker), "3", "--epochs", "2"], worker=worker)
    assert code == 3
    assert marker.read_text() == "3 --epochs 2"


def test_a_script_whose_model_is_broken_does_not_start(tmp_path, capsys, worker):
    script = _project(tmp_path, 5)
    marker = tmp_path / "ran.txt"
    code = main(["run", script, "--", str(marker), "0"], worker=worker)
    err = capsys.readouterr().err
    assert code == 1 and not marker.exists()
    assert "SC101" in err and "models.py" in err
    assert f"{script} was not started: 1 error (--force starts it anyway)" in err
    code = main(["run", script, "--force", "--", str(marker), "0"], worker=worker)
    assert code == 0 and marker.exists()


def test_gate_at_the_top_of_a_script(tmp_path):
    for width, expected in ((4, 0), (5, 1)):
        (tmp_path / "models.py").write_text(MODEL.format(width=width))
        marker = tmp_path / f"ran{width}.txt"
        (tmp_path / "train.py").write_text(
            "import shapecheck\nshapecheck.gate()\n\nimport sys\nfrom models import Net\n\n"
            f"open({str(marker)!r}, 'w').write('trained')\n")
        run = subprocess.run([sys.executable, str(tmp_path / "train.py")], capture_output=True, text=True,
                             env=dict(os.environ, SHAPECHECK_GATE_CHECKED=""))
        assert run.returncode == expected, run.stderr
        assert marker.exists() == (expected == 0)
        if expected:
            assert "SC101" in run.stderr and "Traceback" not in run.stderr
