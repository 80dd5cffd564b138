# rooflax — the two front-door commands are `make sweep` and `make test`.
# Each builds .venv from nothing when it is absent (Python 3.11 is what the machines have).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: venv test test-fast lint sweep bench browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian's chromium (browser tests) and chromium-driver (PNG export); never a downloaded browser.
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing Debian chromium and chromium-driver for the browser tests and PNG export"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "WARNING: could not install chromium; browser tests will be skipped"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check core sweeps results tests benchmarks

# Two pytest workers (the machines here have 2 cores), tests dealt out one by one (the slow
# sweep tests of one file run side by side).
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist load

test: $(STAMP) browser lint
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -x -m "not slow"

sweep: $(STAMP)
	$(BIN)/rooflax sweep configs/default.yaml --overwrite

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) out build dist *.egg-info
