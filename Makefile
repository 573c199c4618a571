# `make demo` and `make test` each set up .venv from scratch when needed, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Shipyard needs Python 3.11 or newer: make PYTHON=python3.11 ..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# gbstats (GrowthBook's stats engine) is the live reference of the experiment statistics;
	# its metadata pins pandas<2 and numpy<2, which it does not need: install it without deps
	$(BIN)/python -m pip install --quiet --no-deps "gbstats==0.8.0"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shipyard demo --dir demo-work

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/pit_join.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) demo-work .pytest_cache
