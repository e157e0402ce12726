# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := data/sample/.generated
export PYTHONDONTWRITEBYTECODE :=

.PHONY: run test sample bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(SAMPLE): $(STAMP) exportaudit/sample_data.py
	$(BIN)/python -m exportaudit.sample_data --out data/sample
	touch $(SAMPLE)

sample: $(SAMPLE)

run: $(STAMP) $(SAMPLE)
	$(BIN)/exportaudit run --exports data/sample/exports.jsonl --deliveries data/sample/deliveries.csv \
	  --archives data/sample/archives.parquet --custody-checks data/sample/custody_checks.jsonl.gz \
	  --as-of 2026-11-20T06:00:00Z --db data/exportaudit.duckdb --out reports

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(if $(EXPORTS),--exports $(EXPORTS),) $(if $(FORMATS),--formats $(FORMATS),)

clean:
	rm -rf $(VENV) data/sample data/exportaudit.duckdb data/.prefect reports/*/
