# Two entry points: `make demo` (the main job) and `make test` (the checks CI runs).
# Both create .venv on first use; later runs reuse it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/netgear demo $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check netgear tests benchmarks
	$(BIN)/python -m pytest -q
	$(BIN)/mkdocs build --strict -q -d /tmp/netgear-site

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(ARGS)

clean:
	rm -rf $(VENV) site .pytest_cache .ruff_cache
