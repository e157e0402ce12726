# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := data/sample/.generated
export PYTHONDONTWRITEBYTECODE :=

.PHONY: run test sample bench bench-inventory bench-archive browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(SAMPLE): $(STAMP) $(wildcard exportaudit/sample/*.py)
	$(BIN)/python -m exportaudit.sample --out data/sample
	touch $(SAMPLE)

sample: $(SAMPLE)

run: $(STAMP) $(SAMPLE)
	$(BIN)/exportaudit run --exports data/sample/exports.jsonl data/sample/real/exports.jsonl \
	  --deliveries data/sample/deliveries.csv --svix-attempts data/sample/real/svix \
	  --archives data/sample/archives.parquet data/sample/real/archives.jsonl \
	  --custody-checks data/sample/custody_checks.jsonl.gz \
	  --s3-inventory data/sample/real/s3/inventory --s3-batch-report data/sample/real/s3/batch \
	  --as-of 2026-11-20T06:00:00Z --db data/exportaudit.duckdb --out reports
# The second night (docs/executions-and-acknowledgements.md): what the retry worker and the alerting system
# recorded, citing the first night's evidence ids, read from the warehouse (exportaudit/sample/second_night.py).
	$(BIN)/python -m exportaudit.sample.second_night --db data/exportaudit.duckdb --out data/sample/second-night
	$(BIN)/exportaudit run --retry-executions data/sample/second-night/retry_executions.jsonl \
	  --alert-acks data/sample/second-night/alert_acknowledgements.csv \
	  --as-of 2026-11-21T06:00:00Z --db data/exportaudit.duckdb --out reports

# The browser test drives Debian's Chromium (never `playwright install`): install it when
# running as root, otherwise stop with one line saying what to do.
browser:
	@if command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing Chromium for the browser test (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "make test needs Chromium for the browser test: run \`sudo apt-get install chromium\` (or \`sudo make browser\`), then \`make test\` again" >&2; \
	  exit 1; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(if $(EXPORTS),--exports $(EXPORTS),) $(if $(FORMATS),--formats $(FORMATS),)

bench-inventory: $(STAMP)
	$(BIN)/python -m benchmarks.inventory

bench-archive: $(STAMP)
	$(BIN)/python -m benchmarks.archive

clean:
	rm -rf $(VENV) data/sample data/exportaudit.duckdb data/.prefect reports/*/
