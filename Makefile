# editqueue — the two commands a newcomer needs are `make run` and `make test`.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-slow unit integration lint typecheck bench chaos compose-config clean

OUT    ?= out/living-room

# pip's log is kept out of sight (this machine's pip config prints ~90 harmless index warnings)
# and shown only when the install fails; the lines around it say what is happening and how long.
$(STAMP): pyproject.toml
	@echo "install: creating $(VENV) and installing editqueue with its dev tools (celery, boto3, fastapi, moto, pytest, ...)"
	@echo "install: this takes about 1-2 minutes the first time (pip's log: $(VENV)/pip.log)"
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	{ $(BIN)/pip install -q -e '.[dev]' > $(VENV)/pip.log 2>&1 || { grep -v "is ignored" $(VENV)/pip.log; exit 1; }; } && \
	touch $(STAMP) && \
	echo "install: done in $$(( $$(date +%s) - start )) s"

install: $(STAMP)  ## create .venv and install editqueue with its dev extras

run: $(STAMP)  ## the living-room session on the embedded default (no servers, no key)
	$(BIN)/editqueue run examples/living-room.yaml --out $(OUT)
	@echo "outputs: $(OUT)/ holds turn_01.jpg ... turn_05.jpg, strip.jpg, report.html, status.json"
	@echo "open the report: xdg-open $(OUT)/report.html (macOS: open), or file://$(abspath $(OUT))/report.html in a browser"

test: $(STAMP)  ## unit + integration tests (starts its own redis-server, moto server, emulator)
	$(BIN)/pytest -q -m "not slow" --cov --cov-report=term:skip-covered

test-slow: $(STAMP)  ## the slow fault tests (SIGKILL at every failpoint, reconcile after a Redis wipe)
	$(BIN)/pytest -q -m slow

unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration"

integration: $(STAMP)
	$(BIN)/pytest -q -m integration

lint: $(STAMP)  ## ruff (incl. complexity C90), format, and the import contract (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# ~5.5 min on 2 cores (BENCH_QUICK=1 make bench: smaller batches); each script starts its
# own redis-server, moto server, emulator and workers, and prints ratios measured in that run.
bench: $(STAMP)
	$(BIN)/python bench/makespan.py --store both  # S3 (the figure) and a local store (its bound)
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/transports.py
	$(BIN)/python bench/recovery.py
	$(BIN)/python bench/sweep.py

chaos: $(STAMP)  ## 50 sessions x 5 turns under SIGKILLs, API faults and a Redis wipe (~2 min)
	$(BIN)/python bench/chaos.py

compose-config:
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
