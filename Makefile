# Two commands on a fresh machine (Python 3.11 + pip):
#   make demo   set up .venv and run the lab's main job: perflab report -> outputs/<run>/index.html
#   make test   set up .venv and run the test suite (real Redis, PostgreSQL, kernel, Chromium)
PYTHON ?= python3
# two pytest-xdist workers, a test file each at a time (module fixtures run once): most tests
# wait on kernels, servers and subprocesses, so a 2-core machine takes 9 min instead of 21
PYTEST_ARGS ?= -q -n 2 --dist loadfile
VENV   ?= .venv
BIN    := $(VENV)/bin
# make demo: perflab with every extra but the test tools; make test: the test tools on top
LAB    := $(VENV)/.installed-all
STAMP  := $(VENV)/.installed

.PHONY: demo test lab lint clean

$(LAB): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[all]'
	touch $(LAB)

$(STAMP): $(LAB) pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(LAB)
	$(BIN)/perflab report $(REPORT_ARGS)

test: $(STAMP)
	sh tools/system-packages.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lab: $(LAB)
	$(BIN)/perflab lab

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

clean:
	-$(BIN)/perflab servers stop
	rm -rf $(VENV) .pytest_cache .ruff_cache
