# `make demo` and `make test` both start from a bare clone: they create .venv, install torch
# (CPU build, pinned) first, then merkit with constraints.txt so nothing moves torch.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.merkit-installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/merkit demo

test: $(STAMP)
	$(BIN)/python -m pytest

# ruff's rules are in pyproject.toml. `ruff format --check` joins once the open branches have
# landed: formatting the whole tree now would conflict with each of them.
lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) merkit-demo .pytest_cache
