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
# The sample's two nights (exportaudit/sample/nights.py): `exportaudit run` over every sample source
# at 2026-11-20T06:00:00Z; the second night's logs (retry executions, alert acknowledgements) written
# from the first night's evidence ids (docs/executions-and-acknowledgements.md); `exportaudit run`
# over them at 2026-11-21T06:00:00Z. One process: imports and the temporary Prefect API are shared.
	$(BIN)/python -m exportaudit.sample.nights --sample data/sample --db data/exportaudit.duckdb --out reports \
	  --second-night-dir data/sample/second-night

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
