# citystream — two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test lint bench sample clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install citystream with its dev tools

demo: $(STAMP)  ## run the main job on the embedded stack (Tansu + chDB), print the summary
	$(BIN)/citystream demo $(ARGS)

# Tests run in TEST_JOBS processes (pytest-xdist, whole files per process: each has its own embedded broker),
# then the `serial` tests (wall-clock latency) alone. TEST_JOBS=0 runs everything in one process.
TEST_JOBS ?= 2

test: $(STAMP)  ## run the whole test suite (unit + integration on the embedded stack)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile -m "not serial" $(ARGS)
	$(BIN)/python -m pytest -m serial $(ARGS); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]  # 5: none selected

lint: $(STAMP)  ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/mypy citystream streams models sinks replay

bench: $(STAMP)  ## print throughput and memory figures
	$(BIN)/citystream bench $(ARGS)

SAMPLE_ARGS := --hours 2 --bikes 1000 --sensors 60 --incidents-per-hour 30 --seed 7
sample: $(STAMP)  ## regenerate the bundled sample feed (replay/sample) used by `make demo`
	$(BIN)/citystream simulate --out replay/sample $(SAMPLE_ARGS) --overwrite

clean:  ## remove embedded data (./var) and caches
	rm -rf var .pytest_cache
