PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 numpy
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The example has two shape bugs: shapecheck reports both and exits 1.
demo: $(STAMP)
	$(BIN)/shapecheck examples/lenet_bug.py; test $$? -eq 1

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/engine_speed.py
	$(BIN)/python benchmarks/conv.py
	$(BIN)/python benchmarks/worker.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
