# Deep Learning Notes, Verified — the two commands are `make book` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The environment is refreshed when the pins or the package metadata change (one stamp per
# content; several checkouts may share one .venv without undoing each other's stamps).
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
NOTEBOOKS := $(sort $(wildcard chapters/*.ipynb))
JB_FLAGS := -W -n --keep-going
export PYTHONHASHSEED := 0
# The package is imported from this tree's src/ even when .venv is shared between checkouts.
export PYTHONPATH := $(CURDIR)/src
# Kernels and data from .venv win over a user-level Jupyter set-up.
export JUPYTER_PREFER_ENV_PATH := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Stored outputs do not depend on the CPU's arithmetic (SIMD width, BLAS code path): the
# notebooks print bounds and summaries, not rounding digits, so no arithmetic is pinned here.
# `make nbval-portable` proves it: it re-runs the notebooks under a deliberately different
# arithmetic (no AVX anywhere: torch's default kernels, MKL's compatible path, oneDNN at
# SSE4.1, OpenBLAS's Prescott kernels, NumPy without its AVX dispatch) against the same
# stored outputs. tests/test_config.py checks that each variable changes a kernel.
PORTABLE_ENV := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE ONEDNN_MAX_CPU_ISA=SSE41 \
  OPENBLAS_CORETYPE=Prescott \
  NPY_DISABLE_CPU_FEATURES="AVX2 FMA3 AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR X86_V3 X86_V4"
NBVAL := -m pytest -q --nbval --nbval-current-env -p no:cacheprovider -n auto --dist loadscope

.PHONY: help venv book pdf test lint unit nbval nbval-portable browser execute lab clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(STAMP):
	@if ! $(BIN)/python -c 'import sys; assert sys.version_info[:2] >= (3, 11)' 2>/dev/null; then \
	  echo "Creating $(VENV)"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)  ## create or refresh .venv with the exact pins and the package

book: $(STAMP)  ## set up and build the HTML book into _build/html
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "The book is at $(CURDIR)/_build/html/index.html"

lint: $(STAMP)  ## ruff over the package, tests, scripts and notebooks
	$(BIN)/ruff check src tests scripts _ext chapters

unit: $(STAMP)  ## unit tests of the package, notebook hygiene and verification rules
	$(BIN)/python -m pytest -q -n auto --dist loadscope tests -m "not browser and not pdf"

nbval: $(STAMP)  ## re-run every notebook; stored outputs must reproduce
	$(BIN)/python $(NBVAL) $(NOTEBOOKS)

nbval-portable: $(STAMP)  ## the same, under a deliberately different CPU arithmetic
	env $(PORTABLE_ENV) $(BIN)/python $(NBVAL) $(NOTEBOOKS)

browser: book  ## build, then real-browser and link tests over the built book
	$(BIN)/python -m pytest -q tests -m browser

pdf: $(STAMP)  ## set up and print the whole book to _build/pdf/book.pdf (needs Chromium)
	$(BIN)/jupyter-book build . --builder singlehtml $(JB_FLAGS)
	$(BIN)/python scripts/print_pdf.py
	$(BIN)/python -m pytest -q tests/test_pdf.py

test: lint unit nbval browser  ## set up, then lint, unit tests, nbval, book build, browser

REPEAT ?= 3
execute: $(STAMP)  ## re-execute every notebook in place (fresh kernels; REPEAT runs timed)
	$(BIN)/python scripts/execute_notebooks.py --repeat $(REPEAT) $(NOTEBOOKS)

lab: $(STAMP)  ## open JupyterLab with the project's environment as its kernel
	$(BIN)/jupyter lab chapters/

clean:  ## remove the build, caches and the virtual environment
	rm -rf _build .pytest_cache .ruff_cache .hypothesis $(VENV)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
