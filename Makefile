# stlit: every command we run more than once.
# `make book` and `make test` work on a fresh machine: they create .venv and install the pinned stack first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stlit-installed
PROFILE ?= quick
PIP := $(BIN)/pip install --disable-pip-version-check -q

.PHONY: venv install export clean-nbs nbtest test test-fast book experiments bench lint clean help

help:
	@echo "make book   - install (if needed), run experiments/ with papermill (PROFILE=$(PROFILE)), build _build/html"
	@echo "make test   - install (if needed), run the whole test suite (inline notebook tests + tests/)"
	@echo "make export - nbdev_export nbs/ -> stlit/ ; make clean-nbs - nbdev_clean"

# torch/torchvision first with exact pins (local wheels here; never let a resolver pick another build).
$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) --upgrade pip==25.3
	$(PIP) torch==2.14.1 torchvision==0.29.1
	$(PIP) -e ".[dev]"
	if command -v R >/dev/null 2>&1; then $(PIP) -e ".[r]" || echo "rpy2 not installed: R backend of mclust unavailable"; fi
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (stlit)" >/dev/null
	touch $(STAMP)

venv install: $(STAMP)

export: $(STAMP)
	$(BIN)/nbdev_export

clean-nbs: $(STAMP)
	$(BIN)/nbdev_clean

nbtest: $(STAMP)
	$(BIN)/nbdev_test --n_workers 2

test: $(STAMP)
	$(BIN)/python -m pytest tests -q -rs --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "not slow"

experiments: $(STAMP)
	$(BIN)/python tools/build_book.py --profile $(PROFILE) --no-html

book: $(STAMP)
	$(BIN)/python tools/build_book.py --profile $(PROFILE)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf _build _docs .pytest_cache
