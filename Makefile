# m7guard: two commands do all set-up on a fresh Debian host (as root):
#   make demo   build the local lab, harden it, audit it, write reports
#   make test   install everything and run the whole test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTHON3 ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help deps venv test-tools lint changelog test test-unit test-integration demo lab-up lab-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## install the system packages the lab and tests need (apt-get, only what is missing)
	@bash scripts/deps.sh

$(STAMP): pyproject.toml $(wildcard requirements/*.txt) field_encryption/__init__.py
	@test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@# pip byte-compiles the installed files one by one, in its one process (about 90 s of
	@# the install's 125 s here); compileall does it on every core (about 30 s)
	@$(PY) -m pip install -q --no-compile -e '.[test,dev]'
	@$(PY) -m compileall -q -j 0 $(VENV)/lib
	@touch $(STAMP)
	@echo "venv: $(VENV) has m7guard and its test and dev tools"

# The checkout as the Ansible collection m7guard.hardening (ansible.cfg: collections_path)
COLLECTION := .collections/ansible_collections/m7guard/hardening
$(COLLECTION):
	@mkdir -p $(dir $(COLLECTION)) && ln -sfn ../../.. $(COLLECTION)

venv: $(STAMP) $(COLLECTION) ## create .venv with the project and its test/dev extras

test-tools: deps venv ## validators used by the report tests (chromium, SARIF validator, trestle)
	@PYTHON=$(PY) bash scripts/test-tools.sh

lint: venv ## ruff, yamllint and ansible-lint (production profile)
	$(BIN)/ruff check .
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production playbooks $(wildcard roles)
	$(BIN)/antsibull-changelog lint

changelog: venv ## release notes of galaxy.yml's version from changelogs/fragments (CHANGELOG.md)
	cd $(COLLECTION) && antsibull-changelog release

test-unit: venv ## the unit tests alone (no lab)
	@bash scripts/pytest.sh tests/unit

test-integration: deps test-tools ## the lab-backed tests alone
	@bash scripts/pytest.sh tests/integration

test: deps test-tools ## everything: lint, unit and lab tests on the Debian 11/12/13 lab (scripts/suite.py)
	@$(PY) scripts/suite.py --durations=25

demo: deps venv ## build the lab, run site.yml, show the inventory and node facts
	@bash scripts/demo.sh

lab-up: deps venv ## bring the local lab up
	$(BIN)/m7guard lab up

lab-down: venv ## remove the local lab (cached images stay)
	$(BIN)/m7guard lab down

clean: ## remove the venv and caches (not the lab: use lab-down)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
