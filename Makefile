# v2v: two commands for a newcomer: `make demo` and `make test`.
#
# Installs are locked: `make setup` installs the versions in requirements/constraints.txt (made by
# `make lock` with uv from pyproject.toml + requirements/pins.in). Plain `pip install v2v` keeps the
# ranges in pyproject.toml. `make test-latest` checks the suite against the newest releases.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.v2v-installed
LOCK := requirements/constraints.txt
POSE_LOCK := requirements/constraints-pose.txt
PINS := requirements/pins.in
UV ?= uv
UV_COMPILE = $(UV) pip compile pyproject.toml $(PINS) --universal --python-version 3.10 --quiet
LATEST := .venv-latest

.PHONY: setup setup-pose lock test test-latest demo lint clean

setup: $(STAMP)

# pip and the build backend (setuptools) come from the lock too; the editable install then builds
# without isolation so it uses exactly that setuptools.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(LOCK) pip setuptools
	$(BIN)/python -m pip install -c $(LOCK) --no-build-isolation -e '.[dev]'
	touch $(STAMP)

# mediapipe (the `pose` extra) needs numpy<2, so it has its own lock; this replaces numpy in .venv.
setup-pose: $(STAMP)
	$(BIN)/python -m pip install -c $(POSE_LOCK) --no-build-isolation -e '.[dev,pose]'

# Regenerate the locks after changing dependencies in pyproject.toml or requirements/pins.in
# (and to move to newer releases once `make test-latest` passes).
lock:
	$(UV_COMPILE) --extra dev -o $(LOCK)
	$(UV_COMPILE) --extra dev --extra pose -o $(POSE_LOCK)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q --doctest-modules v2v/ops v2v/nn

# The newest releases of everything (no lock) in a separate venv: run it on a schedule, not in CI.
test-latest:
	rm -rf $(LATEST)
	$(PY) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --upgrade pip setuptools
	$(LATEST)/bin/python -m pip install --upgrade -e '.[dev]'
	$(LATEST)/bin/python -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/v2v demo --out demo_out

lint: $(STAMP)
	$(BIN)/ruff check v2v tests tools

clean:
	rm -rf $(VENV) $(LATEST) demo_out .pytest_cache
