# The two commands of the README: `make up` runs Parley, `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: up test test-fast test-js lint typecheck bootstrap browser

bootstrap:
	@bash scripts/bootstrap.sh

# A first run does not wait for llama.cpp to compile: the llm service starts when it is built.
up:
	@PARLEY_LLM_LATER=1 bash scripts/bootstrap.sh
	@$(VENV)/bin/parley up

# Everything CI runs: lint, types, the JS client's tests and the whole Python suite,
# end-to-end and browser tests included.
test: bootstrap lint typecheck test-js browser
	@$(PY) -m pytest

test-js:
	@node --test clients/js/test/

# The browser tests need Debian's Chromium; this installs it when it is missing.
browser:
	@bash scripts/ensure-chromium.sh

# A quick local loop: unit and integration tests, no end-to-end runs.
test-fast: bootstrap lint
	@$(PY) -m pytest -m "not e2e"

lint: bootstrap
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

# Packages are checked together; each tests folder on its own, because every one of them is a
# top-level "tests" to mypy.
typecheck: bootstrap
	@$(VENV)/bin/mypy $$(ls -d libs/*/parley_*/ services/*/parley_*/ | grep -v egg-info) bench conftest.py
	@for d in libs/*/tests services/*/tests tests; do \
		ls "$$d"/*.py >/dev/null 2>&1 || continue; \
		$(VENV)/bin/mypy "$$d" || exit 1; \
	done
