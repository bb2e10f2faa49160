# sightline developer commands. `make demo` and `make test` work on a fresh machine:
# they create .venv, install sightline into it, and run.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Dev/CI pin only: a CPU build of PyTorch. The package itself asks for torch>=2.3.
TORCH_SPEC ?= torch==2.13.0
# The tests also run timm's backbones (sightline[timm]). timm imports torchvision, and no CPU
# torchvision wheel matches the CPU torch above: the tests run on PyPI's torch + torchvision
# pair (CUDA builds that run on the CPU, as fast here; ~1.5 min to install). `make demo` keeps
# the small CPU build.
TIMM_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Dataset files: a local mirror folder if one is set, else ../shared/datasets when it exists
# (the offline machines this project is developed on), else the real download.
export SIGHTLINE_DATA_MIRROR := $(or $(SIGHTLINE_DATA_MIRROR),$(abspath $(wildcard ../shared/datasets)))

.PHONY: setup demo serve test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

# One install for the tests (not the CPU build first and then this pair over it: minutes of CI);
# it is a full dev install, so `setup` counts as done. uv installs the same packages as pip in
# 27 s instead of 105 s here (parallel downloads and installs); pip if uv cannot be had.
$(VENV)/.timm: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	( $(BIN)/pip install -q uv && $(BIN)/uv pip install -q --python $(BIN)/python $(TIMM_SPEC) -e ".[dev,timm]" ) \
		|| $(BIN)/pip install -q $(TIMM_SPEC) -e ".[dev,timm]"
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed

## Train the default model on Fashion-MNIST, evaluate it on the test set, save the run.
demo: setup
	$(BIN)/sightline train fashion-mnist

## The web UI and REST API on http://127.0.0.1:8000 (API docs at /docs) for the runs in ./runs.
serve: setup
	$(BIN)/sightline serve

## All tests: unit tests and integration tests that train on the real datasets, one worker per
## CPU core (pytest-xdist; each test file runs in one worker, so its fixtures are made once).
test: $(VENV)/.timm
	$(BIN)/python -m pytest -q -n auto --dist loadfile --durations=25

## Unit tests only (no training on real data).
test-fast: $(VENV)/.timm
	$(BIN)/python -m pytest -q -m "not integration"

lint: setup
	$(BIN)/ruff check sightline tests benchmarks
	$(BIN)/ruff format --check sightline tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
