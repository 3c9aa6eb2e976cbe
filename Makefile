# `make demo` and `make test` both start from a bare clone: they create .venv, install torch
# (CPU build, pinned) first, then merkit with constraints.txt so nothing moves torch.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.merkit-installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/merkit demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) merkit-demo .pytest_cache
