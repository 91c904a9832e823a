# Two commands for a newcomer: `make run` and `make test`. Both build their own virtualenv.
#   make run                        demo NF: SBI h2c on 127.0.0.1:8000, OAM on 127.0.0.1:8080
#   make run RUN_ARGS="--sbi-port 9000 --oam-port 9090"
#   make test                       ruff + layers contract + mypy --strict + pytest (own database)
PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
RUN_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test lint typecheck pytest bench bench-scale bench-drivers bench-edr bench-scaling chart-check chart-tools db-build nrf-build clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

# Best effort, never fails: SecantusDB's Rust server, built once per machine into
# ~/.cache/mvno-nf (the message names the build log). Without cargo, or if the build
# fails, the Python server secantusd-py (from the `embedded` extra) is used.
db-build: $(STAMP)
	-@$(BIN)/nf db build || echo "note: using SecantusDB's Python server (secantusd-py)"

run: $(STAMP) db-build
	$(BIN)/nf demo $(RUN_ARGS)

# ruff, and the layers contract (pyproject.toml [tool.importlinter]): an upward import fails.
lint: $(STAMP)
	$(BIN)/ruff check nf tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict nf

pytest: $(STAMP)
	$(BIN)/pytest -q --durations=15

test: $(STAMP) db-build chart-tools lint typecheck pytest

# Best effort, never fails: the chart tests' pinned helm (built with Go, once per machine)
# and Kubernetes schemas, fetched before pytest so its per-test timeout never includes them.
chart-tools: $(STAMP)
	-@$(BIN)/python -m tests.chart.tools

bench: $(STAMP) db-build
	$(BIN)/python -m bench $(BENCH_ARGS)

# The same benchmark with 1 and then 2 NF instances on one database, side by side.
bench-scaling: $(STAMP) db-build
	$(BIN)/python -m bench.scaling $(BENCH_ARGS)

# Helm chart: pinned helm (built once per machine with Go) and Kubernetes schemas
# (kubernetes-validate), lint, render with default and production values, strict offline
# validation. `make test` runs the same checks (tests/chart), skipped only without Go.
chart-check: $(STAMP)
	$(BIN)/python -m tests.chart

# The population curve: 100k and 1M subscribers (~15 min here); 10M on request (about an
# hour more, most of it seeding): make bench-scale SCALE_SIZES="100000 1000000 10000000"
SCALE_SIZES ?= 100000 1000000
bench-scale: $(STAMP) db-build
	$(BIN)/python -m bench --scale --sizes $(SCALE_SIZES) --seed-processes 2

# Client CPU per operation of PyMongo's async API against mongojet (bench/drivers.py).
bench-drivers: $(STAMP) db-build
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev,bench]'
	$(BIN)/python -m bench.drivers

# free5GC's NRF for the registration tests, built once per machine into ~/.cache/mvno-nf
# (the tests build it themselves on first use; needs Go).
nrf-build: $(STAMP)
	$(BIN)/python -m tests.nrf_peer

clean:
	rm -rf $(VENV) .nf-data .pytest_cache .mypy_cache .ruff_cache .hypothesis

# EDR export and reports at scale (see BENCHMARKS.md): seeds EDR_COUNT synthetic EDRs.
EDR_COUNT ?= 10000000
bench-edr: $(STAMP) db-build
	$(BIN)/python -m bench.edr_scale --count $(EDR_COUNT)
