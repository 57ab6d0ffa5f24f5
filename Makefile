# One-command workflows. Each target installs what it needs on a fresh machine.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed

.PHONY: help setup office lint typecheck unit test demo bench infra-check clean

help:
	@echo "make demo   - start Azurite + simulator, run the auditor end to end, stop them"
	@echo "make test   - ruff, mypy, infra checks and the whole pytest suite"
	@echo "make bench  - benchmarks (bench/), each printing its ratio to a baseline"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PIP) install --quiet --disable-pip-version-check --upgrade pip
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

node_modules/.bin/azurite: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) node_modules/.bin/azurite

# LibreOffice converts evidence packs to PDF in a test (an auditor's view of the workbook) and
# poppler-utils' pdftotext measures the printed text. Installed when missing and we may (root
# with apt-get, as in CI); otherwise those tests skip and say why.
office:
	@command -v soffice >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing libreoffice-calc"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libreoffice-calc >/dev/null; \
	  else echo "note: LibreOffice (soffice) missing: the PDF conversion test will skip"; fi; }
	@command -v pdftotext >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing poppler-utils"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; \
	  else echo "note: pdftotext (poppler-utils) missing: the printed-text checks will skip"; fi; }

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

infra-check: $(STAMP)
	$(PY) tools/check_infra.py

test: setup office lint typecheck infra-check
	$(PY) -m pytest -q

demo: setup
	$(PY) -m tools.demo

bench: setup
	$(PY) -m bench

clean:
	rm -rf .demo .bench .pytest_cache .mypy_cache .ruff_cache
