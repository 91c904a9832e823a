# Two commands for a newcomer: `make run` and `make test`. Both build their own virtualenv.
#   make run                        demo NF: SBI h2c on 127.0.0.1:8000, OAM on 127.0.0.1:8080
#   make run RUN_ARGS="--sbi-port 9000 --oam-port 9090"
#   make test                       ruff + mypy --strict + pytest (starts its own database)
PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
RUN_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test lint typecheck pytest bench db-build clean

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

lint: $(STAMP)
	$(BIN)/ruff check nf tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict nf

pytest: $(STAMP)
	$(BIN)/pytest -q

test: $(STAMP) db-build lint typecheck pytest

bench: $(STAMP) db-build
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .nf-data .pytest_cache .mypy_cache .ruff_cache .hypothesis
