# One command to run the assistant, one to test it: see README.md.
VENV   := .venv
PY     := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
# No usage reports or crash reports leave the machine.
export RASA_TELEMETRY_ENABLED := false
export PYTHONPATH := $(CURDIR)

.PHONY: setup run shell train test lint bench lock clean

setup: $(VENV)/.installed var/spacy/en_clinic/build-stamp.json

$(VENV)/.installed: requirements.lock
	test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.2
	$(PY) -m pip install --quiet -r requirements.lock
	touch $@

var/spacy/en_clinic/build-stamp.json: $(VENV)/.installed clinic_assistant/nlp/terms.py clinic_assistant/nlp/build_model.py
	$(PY) -m clinic_assistant spacy-model

run: setup      ## train if needed, serve REST on :5005 and actions on :5055
	$(PY) -m clinic_assistant run

shell: setup    ## chat in the terminal
	$(PY) -m clinic_assistant shell

train: setup
	$(PY) -m clinic_assistant train

test: setup     ## every test: lint, data validation, NLU, stories, end to end
	$(VENV)/bin/ruff check .
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
	rm -rf models var .pytest_cache results
