import os
import warnings

import pytest

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
CASES = os.path.join(ROOT, "tests", "models", "cases")
GOLDEN = os.path.join(ROOT, "tests", "golden")

# Small repositories checked by the tests: their own test files are data, not tests to run.
collect_ignore = ["repos"]


@pytest.fixture(scope="session")
def worker():
    """One warm worker process for the whole test session (the CLI tests reuse it)."""
    from shapecheck.worker import Worker

    with Worker() as running:
        yield running


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", help="rewrite tests/golden/* from current output")


@pytest.fixture
def golden(request):
    """Compare text with tests/golden/NAME; rewrite it with --update-goldens."""
    update = request.config.getoption("--update-goldens")

    def check(name: str, text: str) -> None:
        path = os.path.join(GOLDEN, name)
        if update or not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            if not update:
                pytest.fail(f"golden file {name} was missing and has been written; re-run")
        with open(path, encoding="utf-8") as handle:
            assert text == handle.read()

    return check
