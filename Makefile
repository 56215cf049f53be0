# The two commands a newcomer needs (see README.rst):
#   make demo   - the gateway on etc/krakend.json with the demo v1/v2 backends
#   make test   - the whole test suite (what .ci/run runs)
# Both create and fill the virtualenv first. PYTHON=pypy3 VENV=.venv-pypy runs them on PyPy.

PYTHON ?= python3
VENV ?= .venv
# PyPy's young generation as the systemd unit sets it (README.rst); CPython ignores it.
PYPY_GC_NURSERY ?= 16MB
BIN := $(VENV)/bin
SOURCES := setup.py pyproject.toml $(wildcard shadowtwist/*.py) twisted/plugins/shadowgw_plugin.py
TRIAL_ARGS ?= tests

.PHONY: demo test test-pypy check bench install clean

$(VENV)/.installed: $(SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet .
	touch $@

install: $(VENV)/.installed

demo: install
	PYPY_GC_NURSERY=$(PYPY_GC_NURSERY) $(BIN)/twistd --nodaemon --pidfile= shadowgw --config etc/krakend.json --demo

test: install
	$(BIN)/python tests/run.py $(TRIAL_ARGS)

# The suite on PyPy (Debian's pypy3, Python 3.9), installing pypy3 first when it is missing.
test-pypy:
	command -v pypy3 >/dev/null || (apt-get update -q && apt-get install -y -q pypy3)
	$(MAKE) test PYTHON=pypy3 VENV=.venv-pypy

check: install
	$(BIN)/shadowgw check etc/krakend.json

bench:
	python3 bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info _trial_temp* twisted/plugins/dropin.cache
