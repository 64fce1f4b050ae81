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

.PHONY: lint demo test test-fast bench bench-long lock clean-demo venv exps compare mutation

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	# numba compiles librosa's pitch tracker once, here, without TensorFlow loaded (mmer.functionals.warm_up)
	$(BIN)/python -c "from mmer.functionals import warm_up; warm_up()"
	touch $(STAMP)

# dvc exp save commits to a Git ref: on a machine with no Git identity (a fresh CI runner) use a neutral one
GIT_IDENTITY := $(if $(shell git config user.email 2>/dev/null),,GIT_AUTHOR_NAME=mmer GIT_AUTHOR_EMAIL=mmer@localhost GIT_COMMITTER_NAME=mmer GIT_COMMITTER_EMAIL=mmer@localhost)

## demo: generate the sample corpus, run the whole DVC pipeline, record it as the experiment "baseline", summarise what it trained and how it scored
demo: $(STAMP)
	test -d data/raw || $(BIN)/mmer synth --out data/raw --preset demo
	$(BIN)/dvc repro
	$(GIT_IDENTITY) $(BIN)/dvc exp save --force --name baseline --include-untracked metrics --quiet
	$(BIN)/mmer summary

# `make exps` shows the params that differ between rows and the headline metrics: the fixed split's
# test accuracy, UAR and macro-F1, the cross-validation means, the baselines' accuracy, best epoch.
# (dvc exp show matches these patterns from the start of each column name.)
EXPS_DROP ?= .*/.*|Executor|(mean_span_s|padded_frames|truncated|frames_with_face|train\.(accuracy|loss)|val\.(accuracy|loss)|learning_rate|step|epochs_run|seconds_per_epoch|train_seconds|n_parameters|n_train|n_perturbed|n_val|best\.val_loss|best\.val_accuracy|majority\..*|model_inputs|split|enabled|per_class_recall\..*|majority_(macro_f1|uar)\..*|majority_accuracy\.std|(uar|macro_f1)\.std|(audio|video|av)\.(uar|classifier))$$
## exps: the experiments side by side, narrow enough for a terminal
exps: $(STAMP)
	$(BIN)/dvc exp show --no-pager --only-changed --drop '$(EXPS_DROP)'

## compare: an experiment against the demo's recorded baseline (make compare EXP=audio-only; default: the workspace)
compare: $(STAMP)
	$(BIN)/dvc exp diff baseline $(EXP)

## lint: ruff's checks (configured in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# test processes (pytest-xdist): one per core, at most 4 (each may load TensorFlow); make test TEST_JOBS=1 runs serially.
# --dist loadfile keeps each test file in one process, so its module fixtures (a corpus, a trained model) are made once.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
PYTEST_JOBS = $(if $(filter 1,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)

## test: lint, then the whole offline test suite (in TEST_JOBS processes)
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -x --durations=15 $(PYTEST_JOBS)

## coverage: the whole suite with the line coverage of mmer/ (docs/testing.md; slower than make test)
coverage: $(STAMP)
	$(BIN)/python -m pytest -q --cov=mmer --cov-report=term:skip-covered $(PYTEST_JOBS)

## test-fast: everything but the end-to-end tests
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_JOBS)

## mutation: mutmut's score per target module -> docs/mutation.md (a few minutes per module; not in CI)
mutation: $(STAMP)
	nice $(BIN)/python tests/mutation.py $(MODULES)

## bench: speed and memory figures -> metrics/bench.json
bench: $(STAMP)
	$(BIN)/python -m bench.run

## bench-long: mmer predict on a 10-minute 720p recording, memory per worker at 720p and 4K -> metrics/bench-long.json (also part of make bench)
bench-long: $(STAMP)
	$(BIN)/python -m bench.long_input

## lock: rewrite requirements.lock from the current .venv
lock:
	{ echo "# Exact versions mmer was tested with (pip freeze of .venv, Python 3.11, x86_64)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^mmer'; } > requirements.lock
