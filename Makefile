# Neuroglass — set-up, run, test, bench. Every target installs what is missing first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test bench lint clean

install: $(VENV)/.installed-test static/vendor/.installed

# The venv and the runtime packages; redone only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

# Test and lint tools on top, and the Ray extra (the sweep backend's tests run on a local Ray).
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,ray]'
	@touch $@

# The page's front-end packages, pinned in package-lock.json, copied into static/vendor/ (git-ignored) by
# `npm run vendor` (also npm ci's postinstall, for setups such as the Dockerfile that only run npm ci).
# Redone only when package.json or the lock file changes.
static/vendor/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	npm run --silent vendor
	@touch $@

run: install
	$(PY) -m server --host $(HOST) --port $(PORT)

test: install
	$(PY) -m ruff check server tests bench examples
	$(PY) -m ruff format --check server tests bench examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	npx --no-install biome lint static/js
	$(PY) -m pytest -n auto --dist loadfile

bench: install
	@$(PY) -m bench.bench

lint: install
	$(PY) -m ruff check server tests bench examples
	$(PY) -m ruff format --check server tests bench examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	npx --no-install biome lint static/js

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache node_modules static/vendor
