# The front door: `make up` brings the app up, `make test` runs every test. Both create the virtualenv first, and
# install the machine packages they need (mnist_deploy/provision.py declares them) when run as root on Debian/Ubuntu.
PYTHON ?= python3
# make test TIER=unit|slow|e2e|integration|deploy|all (all: everything but tests/infra)
TIER ?= all
VENV ?= .venv
INVOKE := $(VENV)/bin/invoke
STAMP := $(VENV)/.installed

.PHONY: venv up down build logs status test train lint clean

venv: $(STAMP)

$(STAMP): requirements.txt app/backend/requirements.txt app/frontend/requirements.txt app/training/requirements.txt
	$(PYTHON) -m mnist_deploy.provision venv
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --progress-bar off -r requirements.txt
	touch $@

train: venv
	$(INVOKE) train

test: venv
	$(INVOKE) test --tier=$(TIER)

lint: venv
	$(INVOKE) lint

up: venv
	$(INVOKE) up

down build logs status clean: venv
	$(INVOKE) $@
