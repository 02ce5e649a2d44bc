# Gatehouse: `make run` starts everything on one machine; `make test` runs every check.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
OIDC_PROVIDER := devtools/oidc_provider
OIDC_INSTALLED := $(OIDC_PROVIDER)/node_modules/.package-lock.json

.PHONY: run test lint format install clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The test OpenID Connect provider's npm packages, exactly as locked.
$(OIDC_INSTALLED): $(OIDC_PROVIDER)/package-lock.json
	cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund --loglevel=error

install: $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/python -m devtools.run

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint $(OIDC_INSTALLED)
	$(BIN)/lint-imports
	GATEHOUSE_DEBUG=1 $(BIN)/mypy
	GATEHOUSE_DEBUG=1 $(BIN)/python manage.py check
	GATEHOUSE_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
