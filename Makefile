# One-command workflows. Each target installs what it needs on a fresh machine.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed

.PHONY: help setup office browser lint typecheck unit test demo serve bench infra-check clean

help:
	@echo "make demo   - start Azurite + simulator, run the auditor end to end, stop them"
	@echo "make serve  - Azurite + simulator + two days of snapshots, then the dashboard"
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
# $(call apt_ensure,COMMAND,PACKAGE,WHAT SKIPS): install PACKAGE when COMMAND is missing and we
# may (root with apt-get); otherwise say what will skip.
define apt_ensure
	@command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(2)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else echo "note: $(1) ($(2)) missing: $(3)"; fi; }
endef

office:
	$(call apt_ensure,soffice,libreoffice-calc,the PDF conversion test will skip)
	$(call apt_ensure,pdftotext,poppler-utils,the printed-text checks will skip)

# The dashboard's browser tests drive Debian's Chromium (never a downloaded browser).
browser:
	$(call apt_ensure,chromium,chromium,the browser tests will skip)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

infra-check: $(STAMP)
	$(PY) tools/check_infra.py

test: setup office browser lint typecheck infra-check
	$(PY) -m pytest -q

demo: setup
	$(PY) -m tools.demo

serve: setup
	$(PY) -m tools.demo --serve

bench: setup
	$(PY) -m bench

clean:
	rm -rf .demo .bench .pytest_cache .mypy_cache .ruff_cache
