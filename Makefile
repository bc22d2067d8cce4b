PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The oldest torch that pyproject.toml accepts, tested by `make test-oldest`.
OLDEST_TORCH := 2.3.1
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed

.PHONY: demo test test-oldest bench clean

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

$(OLDEST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install -q --upgrade pip
	$(OLDEST)/bin/pip install -q torch==$(OLDEST_TORCH) 'numpy<2'
	$(OLDEST)/bin/pip install -q -e '.[test]'
	touch $(OLDEST_STAMP)

# The suite on the oldest supported torch; slow to set up, so not part of `make test`.
test-oldest: $(OLDEST_STAMP)
	$(OLDEST)/bin/python -m pytest -q -rs

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/engine_speed.py
	$(BIN)/python benchmarks/conv.py
	$(BIN)/python benchmarks/conv_memory.py train
	$(BIN)/python benchmarks/worker.py
	$(BIN)/python benchmarks/lsp.py

clean:
	rm -rf $(VENV) $(OLDEST) .pytest_cache .hypothesis
