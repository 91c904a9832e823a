# Two commands for a newcomer: `make run` and `make test`. Both build their own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench db-build clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

# Best effort: SecantusDB's Rust server, built once per machine into ~/.cache/mvno-nf.
# Without cargo (or if the build fails) the Python server secantusd-py is used.
db-build: $(STAMP)
	@$(BIN)/nf db build || echo "note: using SecantusDB's Python server (secantusd-py)"

run: $(STAMP) db-build
	$(BIN)/nf demo

lint: $(STAMP)
	$(BIN)/ruff check nf tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict nf

pytest: $(STAMP)
	$(BIN)/pytest -q

test: $(STAMP) db-build lint typecheck pytest

bench: $(STAMP) db-build
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .nf-data .pytest_cache .mypy_cache .ruff_cache
