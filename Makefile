# The front door: `make up` brings the app up, `make test` runs every test. Both create the virtualenv first, and
# install the machine packages they need (mnist_deploy/provision.py declares them) when run as root on Debian/Ubuntu.
PYTHON ?= python3
# make test TIER=unit|slow|e2e|integration|deploy|fresh|all (all: everything but tests/infra and fresh)
TIER ?= all
VENV ?= .venv
INVOKE := $(VENV)/bin/invoke
STAMP := $(VENV)/.installed
PIP_LOG := build/logs/venv.log

.PHONY: venv up down build logs status test train lint clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-ops.txt app/backend/requirements.txt app/frontend/requirements.txt app/training/requirements.txt
	$(PYTHON) -m mnist_deploy.provision venv
	$(PYTHON) -m venv $(VENV)
	@mkdir -p build/logs
	@echo "venv: installing requirements.txt into $(VENV) (a few minutes the first time; log: $(PIP_LOG))"
	@$(VENV)/bin/pip install --progress-bar off --upgrade pip -r requirements.txt >$(PIP_LOG) 2>&1 \
		|| { tail -n 30 $(PIP_LOG); echo "error: pip install failed; full log: $(PIP_LOG)"; exit 2; }
	@# kedro pulls in kedro-telemetry, which would send usage data: this toolkit sends nothing by default.
	@$(VENV)/bin/pip uninstall --yes kedro-telemetry >>$(PIP_LOG) 2>&1
	@echo "venv: ready, $$($(VENV)/bin/pip list 2>/dev/null | tail -n +3 | wc -l) packages"
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
