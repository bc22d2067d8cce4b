"""Fuzzing, the fast profile: generated model files and mutated sources through the command line.

Never a traceback, exit 0/1/2 only, no internal error, nothing past the deadline; on generated
files, shapecheck's verdict agrees with real torch (see `fuzzing.py`). Derandomized, so every
run checks the same files. The long run is `benchmarks/fuzz.py`.
"""

import json
import os
import subprocess
import sys
import tempfile

from hypothesis import HealthCheck, given, settings

import fuzzing
from conftest import EXAMPLES, ROOT

GENERATED_EXAMPLE = """import torch
import torch.nn as nn
import torch.nn.functional as F


# shapecheck: input=(2, 3, 4)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.l0 = nn.Linear(4, 4)
        self.l1 = nn.Linear(12, 4)

    def forward(self, x):
        x = self.l0(x)
        x = x.view(x.size(0), -1)
        x = self.l1(x)
        return x
"""
FAST = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FAST
@given(model=fuzzing.model_files())
def test_generated_models_agree_with_torch(model, worker, tmp_path):
    outcome, verdict = fuzzing.check_generated(model, worker, tempfile.mkdtemp(dir=tmp_path))
    assert outcome.problems() == [], model.source
    assert verdict == "", (verdict, outcome.codes(), model.source)


@FAST
@given(mutant=fuzzing.mutants())
def test_mutated_sources_never_break_the_cli(mutant, worker, tmp_path):
    outcome = fuzzing.check_mutant(mutant, worker, tempfile.mkdtemp(dir=tmp_path))
    assert outcome.problems() == [], mutant.source


BROKEN = {  # name: source; each one a kind of damage the mutations make
    "syntax.py": "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def forward(self, x)\n        return x\n",
    "zero_channels.py": open(os.path.join(EXAMPLES, "lenet_bug.py")).read().replace("nn.Conv2d(1, 6, 3)",
                                                                                  "nn.Conv2d(1, 0, 3)"),
    "renamed.py": open(os.path.join(EXAMPLES, "lenet.py")).read().replace("self.conv2(", "self.conv3("),
}


def test_end_to_end_no_traceback(tmp_path):
    """The console entry point in a fresh process: one JSON document, no traceback on stderr.

    In-process runs cannot see what reaches the terminal when the process ends (`run()` leaves
    with `os._exit`). `--no-sandbox` spares a second torch import; the worker is fuzzed above.
    """
    paths = [fuzzing.write(str(tmp_path), name, source) for name, source in BROKEN.items()]
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-m", "shapecheck.frontends.cli", *paths, "--format", "json",
                           "--no-sandbox"], capture_output=True, text=True, env=env, timeout=300)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert done.returncode == 1
    codes = {d["path"]: d["code"] for d in json.loads(done.stdout)["diagnostics"] if d["severity"] == "error"}
    assert codes[paths[0]] == "SC901"
    assert set(codes) == set(paths)


def test_oracle_sees_a_missed_error_and_a_false_alarm():
    """The oracle itself: torch's failure against a clean report, and a report against a clean run."""
    bad = fuzzing.Generated(GENERATED_EXAMPLE.replace("nn.Linear(12, 4)", "nn.Linear(11, 4)"),
                            (((2, 3, 4), "float32"),))
    real = fuzzing.run_real(bad)
    assert real.failed.startswith("mat1 and mat2 shapes cannot be multiplied")
    clean = fuzzing.Outcome(0, "", "", 0.1, document={"models": [{"status": "checked"}], "diagnostics": []})
    assert fuzzing.disagreement(clean, real).startswith("missed: no error, but torch fails")
    error = {"code": "SC101", "severity": "error"}
    flagged = fuzzing.Outcome(1, "", "", 0.1, document={"models": [{"status": "checked"}], "diagnostics": [error]})
    good = fuzzing.Generated(GENERATED_EXAMPLE, (((2, 3, 4), "float32"),))
    assert fuzzing.disagreement(flagged, fuzzing.run_real(good)) == "false alarm: SC101 but torch runs it"


def test_oracle_sees_a_mixed_batch_and_a_broadcast_loss():
    source = GENERATED_EXAMPLE.replace("return x", "x = x.view(-1, 2)\n        return F.mse_loss(x, y)")
    real = fuzzing.run_real(fuzzing.Generated(source.replace("(self, x)", "(self, x, y)"),
                                              (((2, 3, 4), "float32"), ((12,), "float32"))))
    assert real.failed.startswith("The size of tensor a (2)")
    assert real.batch_changed
    source = GENERATED_EXAMPLE.replace("return x", "return F.mse_loss(x[..., :1], y)")
    real = fuzzing.run_real(fuzzing.Generated(source.replace("(self, x)", "(self, x, y)"),
                                              (((2, 3, 4), "float32"), ((2, 3), "float32"))))
    assert (real.failed, real.broadcast) == ("", True)


def test_token_edits():
    source = "x = f(a, 12)\n"
    assert fuzzing.token_edit(source, "delete", 2) == "x = (a, 12)\n"
    assert fuzzing.token_edit(source, "duplicate", 3) == "x = f( (a, 12)\n"
    assert fuzzing.token_edit(source, "swap", 4) == "x = f(,a 12)\n"
    assert fuzzing.token_edit(source, "number", 0, 1) == "x = f(a, 1)\n"
    assert fuzzing.token_edit(source, "identifier", 2, 0) == "x = f(x, 12)\n"
