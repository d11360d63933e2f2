# The two commands: `make demo` runs the main job, `make test` runs the tests.
# Each sets up what it needs: a virtual environment in .venv with the package installed;
# `make demo` only what the main job needs, `make test` adds the developer extras.
# TORCH_INDEX: where torch and torchvision come from, e.g. PyTorch's CPU-only wheels
# (`make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu`: no CUDA libraries).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.dev-stamp
TORCH_INDEX ?=

.PHONY: demo test lint format docs bench time-to-accuracy data clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install -q torch torchvision --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

test: $(DEV_STAMP)
	sh scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# the documentation site (docs/, mkdocs.yml) into site/; --strict fails on a broken link
# or a reference the API does not have
docs: $(DEV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

data: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" sh scripts/get-fashion-mnist.sh

demo: data
	$(BIN)/tinyvision tour --quick

bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/attention.py

# fashion-fast against the course stack, 5 seeds x 5 minutes each: under an hour
time-to-accuracy: data
	$(BIN)/python benchmarks/time_to_accuracy.py

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info .pytest_cache .ruff_cache
