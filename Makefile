# stlit: every command we run more than once.
# `make book` and `make test` work on a fresh machine: they create .venv and install the checked set (constraints.txt) first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stlit-installed
PROFILE ?= quick
PIP := $(BIN)/pip install --disable-pip-version-check -q
CONSTRAINTS := constraints.txt

.PHONY: venv install export clean-nbs nbtest test test-fast test-packaging constraints book experiments bench lint clean help

help:
	@echo "make book   - install (if needed), run experiments/ with papermill (PROFILE=$(PROFILE)), build _build/html"
	@echo "make test   - install (if needed), run the whole test suite (inline notebook tests + tests/, packaging test included)"
	@echo "make export - nbdev_export nbs/ -> stlit/ ; make clean-nbs - nbdev_clean"

# The exact, checked set is constraints.txt (settings.ini only declares ranges). torch/torchvision go first with the
# same exact pins (local wheels here; never let a resolver pick another build), then the package with its extras.
$(STAMP): settings.ini setup.py $(CONSTRAINTS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) --upgrade pip==25.3
	$(PIP) -c $(CONSTRAINTS) torch torchvision
	$(PIP) -c $(CONSTRAINTS) -e ".[dev,images,fetch,peers]"
	if command -v R >/dev/null 2>&1; then $(PIP) -c $(CONSTRAINTS) -e ".[r]" || echo "rpy2 not installed: R backend of mclust unavailable"; fi
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
	$(BIN)/python -m pytest tests -q -m "not slow and not packaging"

# The wheel in a fresh venv that already holds the lowest supported torch/numpy/scanpy/... (part of `make test`).
test-packaging: $(STAMP)
	$(BIN)/python -m pytest tests/test_packaging.py -q -rs -s

# Rewrite constraints.txt from the current .venv (after an upgrade that passed `make test` and `make book`).
constraints: $(STAMP)
	{ grep '^#' $(CONSTRAINTS); $(BIN)/pip freeze | grep -v -e '^-e ' -e '^# Editable' -e '^rpy2=='; grep '^rpy2==' $(CONSTRAINTS); } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

experiments: $(STAMP)
	$(BIN)/python tools/build_book.py --profile $(PROFILE) --no-html

book: $(STAMP)
	$(BIN)/python tools/build_book.py --profile $(PROFILE)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf _build _docs .pytest_cache
