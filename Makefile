# preserve — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= demo-home
# pytest processes: both cores of the CI machine; a test file runs whole in one process (--dist loadfile)
TEST_WORKERS ?= 2
S3 ?= 0

.PHONY: demo test smoke bench venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[s3server]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python -m devtools.demo $(if $(filter 1,$(S3)),--s3 --home $(HOME_DIR)-s3,--home $(HOME_DIR))

test: $(VENV)/.installed-test
	$(BIN)/python -m tests.prepare
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

# the wheel on its own, in a fresh venv outside the checkout (also part of `make test`)
smoke: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q tests/test_wheel.py

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(HOME_DIR) $(HOME_DIR)-s3 bench/corpora bench/out
