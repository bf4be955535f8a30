# One command to run the assistant, one to test it: see README.md.
VENV   := .venv
PY     := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
# No usage reports or crash reports leave the machine.
export RASA_TELEMETRY_ENABLED := false
export PYTHONPATH := $(CURDIR)

# Installing Debian's Chromium for the browser tests needs root.
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
WIDGET := widget/dist/clinic-widget.js

.PHONY: setup run shell train test lint bench lock clean browser

setup: $(VENV)/.installed var/spacy/en_clinic/build-stamp.json $(WIDGET)

$(VENV)/.installed: requirements.lock
	test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.2
	$(PY) -m pip install --quiet -r requirements.lock
	touch $@

var/spacy/en_clinic/build-stamp.json: $(VENV)/.installed clinic_assistant/nlp/terms.py clinic_assistant/nlp/build_model.py
	$(PY) -m clinic_assistant spacy-model

# The website widget: npm packages pinned by widget/package-lock.json, bundled locally (no CDN).
$(WIDGET): widget/package-lock.json widget/build.mjs $(wildcard widget/src/*)
	cd widget && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

# The browser tests drive the machine's Chromium (Debian's package); browsers are never downloaded.
browser:
	command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

run: setup      ## train if needed, serve REST on :5005, actions on :5055, the demo page on :8080
	$(PY) -m clinic_assistant run

shell: setup    ## chat in the terminal
	$(PY) -m clinic_assistant shell

train: setup
	$(PY) -m clinic_assistant train

test: setup browser  ## every test: lint, data validation, NLU, stories, end to end, browser
	$(VENV)/bin/ruff check .
	cd widget && npm test --silent
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

bench: setup    ## figures for the closing notes
	$(PY) -m bench

lock:           ## re-pin requirements.lock from requirements.in in a scratch venv
	rm -rf var/lockenv && $$(scripts/find-python) -m venv var/lockenv
	var/lockenv/bin/pip install --quiet --upgrade pip==24.2
	var/lockenv/bin/pip install --quiet -r requirements.in
	var/lockenv/bin/pip freeze --all --exclude pip --exclude setuptools --exclude wheel > requirements.lock
	rm -rf var/lockenv

clean:
	rm -rf models var .pytest_cache results widget/dist widget/node_modules
