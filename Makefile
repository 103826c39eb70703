# Creative Writing Coach: everything runs from a fresh clone with Python >= 3.11, pip and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: build test lint clean setup

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: a whole local dataset build on the bundled samples with the offline critic.
build: $(STAMP)
	$(BIN)/coach build --source samples --provider offline --build-id samples-offline --out out/samples-offline

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# ruff, plus cfn-lint 1.52 / sam validate --lint / checkov over template.yaml (tools in .venv/lint).
lint: $(STAMP)
	$(BIN)/ruff check .
	infra/lint.sh

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
