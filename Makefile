# `make demo` and `make test` both start from a bare clone: they create .venv, install torch
# (CPU build, pinned) first, then merkit with constraints.txt so nothing moves torch.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.merkit-installed

.PHONY: demo test lint docs dist check-wheel bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,ray,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/merkit demo

test: $(STAMP)
	$(BIN)/python -m pytest

# ruff's rules and its formatting are set in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site (mkdocs.yml) into site/; --strict: a broken link or a docstring that does
# not render fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The sdist and the wheel into dist/; check-wheel installs the wheel alone into a fresh venv and runs it.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

check-wheel: dist
	.ci/wheel $(PYTHON)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) merkit-demo .pytest_cache dist build site
