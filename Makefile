# mmer: the two commands of the README, and the few that help them.
# Every target that needs Python creates .venv and installs into it first, once.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
export TF_CPP_MIN_LOG_LEVEL ?= 3
export GLOG_minloglevel ?= 2
export PYTHONHASHSEED ?= 0
# dvc.yaml runs `python stages/...`: make it the venv's python
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test test-fast bench lock clean-demo venv

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## demo: generate the sample corpus, run the whole DVC pipeline, summarise what it trained and how it scored
demo: $(STAMP)
	test -d data/raw || $(BIN)/mmer synth --out data/raw --preset demo
	$(BIN)/dvc repro
	$(BIN)/mmer summary

## test: the whole offline test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q -x --durations=15

## test-fast: everything but the end-to-end tests
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## bench: speed and memory figures -> metrics/bench.json
bench: $(STAMP)
	$(BIN)/python -m bench.run

## lock: rewrite requirements.lock from the current .venv
lock:
	{ echo "# Exact versions mmer was tested with (pip freeze of .venv, Python 3.11, x86_64)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^mmer'; } > requirements.lock
