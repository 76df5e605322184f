# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEFAULT_OUT := results/default

.PHONY: run test bench browser venv clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

## Headless Chromium (report --pdf, report tests) and poppler-utils (pdftoppm, pdftotext: the PDF
## test); Debian packages; the tests fail without them when CI=true.
browser:
	@(command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1) && \
	  command -v pdftoppm >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null) || \
	  echo "warning: could not install chromium/poppler-utils; the browser tests will skip (or fail with CI=true)"

## Default comparison: Eugene police only vs CAHOOTS, same calls; charts and report in results/default.
run: $(STAMP)
	$(BIN)/crisis-sim compare scenarios/eugene/police_only.yaml scenarios/eugene/cahoots.yaml \
	    --replications 5 --out $(DEFAULT_OUT)
	$(BIN)/crisis-sim report $(DEFAULT_OUT) --out $(DEFAULT_OUT)/report.html \
	    --charts-dir $(DEFAULT_OUT)/charts --target-min 30
	@echo "charts: $(DEFAULT_OUT)/charts/   report: $(DEFAULT_OUT)/report.html   tables: $(DEFAULT_OUT)/summary.csv"

## Whole test suite (statistical tests use fixed seeds), notebooks included.
test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_cahoots.py
	$(BIN)/python bench/bench_parallel.py
	$(BIN)/python bench/bench_startup.py

## Generated references: JSON Schema of scenario files, field reference, outputs data dictionary.
docs: $(STAMP)
	$(BIN)/crisis-sim schema --out docs/scenario.schema.json --reference docs/scenario-reference.md \
	    --outputs docs/outputs.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
