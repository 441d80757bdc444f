# Squall: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes side by side (pytest-xdist, one module per process: module fixtures stay whole).
# Much of the suite waits on servers and sandboxes, so two halve its time even on two cores.
TEST_WORKERS ?= 2

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/squall demo

test: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: install
	$(BIN)/python -m benchmarks.run

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy --strict src

clean:
	rm -rf $(VENV) .squall .pytest_cache .mypy_cache .ruff_cache
