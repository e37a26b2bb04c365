# pingpong: `make run` serves on 127.0.0.1:8080, `make test` runs everything.
# Both set themselves up from nothing (a venv from constraints.txt; `make test`
# also installs the system packages and validation tools the suite needs).

PYTHON ?= python3
VENV   := .venv
TOOLS  := .tools-venv
BIN    := $(VENV)/bin
NPM_TOOLS := $(wildcard tools/*/package-lock.json)
NPM_BINS  := $(patsubst %/package-lock.json,$(CURDIR)/%/node_modules/.bin,$(NPM_TOOLS))
empty :=
space := $(empty) $(empty)
export PATH := $(CURDIR)/$(TOOLS)/bin:$(subst $(space),:,$(strip $(NPM_BINS))):$(PATH)

# The hot path is compiled by mypyc (setup.py, mypyc-modules.txt): the install is
# redone (the build is what takes time) when a listed module changes, and
# tests/conftest.py refuses a compiled module older than its source.
COMPILED := $(shell grep -v '^\#' mypyc-modules.txt)
# pip's isolated build environment (setup.py's mypy and its dependencies) pinned too.
INSTALL := PIP_CONSTRAINT=constraints.txt $(BIN)/pip install --quiet -c constraints.txt

.PHONY: run test lint unit compile tools system-deps bench lock clean

run: $(VENV)/.installed
	$(BIN)/pingpong serve $(ARGS)

test: system-deps $(VENV)/.installed tools lint
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy  # strict over src, deploy/bluegreen, tests and bench (pyproject)
	$(BIN)/lint-imports
	@! git grep -n "sys.path.insert" -- '*.py' || (echo "import installed packages instead"; false)

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit

compile: $(VENV)/.installed

# An editable install builds the compiled modules next to their sources.
$(VENV)/.installed: pyproject.toml constraints.txt setup.py mypyc.ini mypyc-modules.txt $(COMPILED)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(INSTALL) -e '.[dev]'
	touch $@

tools: $(if $(wildcard tools/requirements.txt),$(TOOLS)/.installed) \
       $(NPM_TOOLS:package-lock.json=node_modules/.installed)

$(TOOLS)/.installed: tools/requirements.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet -r tools/requirements.txt
	touch $@

tools/%/node_modules/.installed: tools/%/package-lock.json
	npm ci --prefix tools/$* --no-audit --no-fund --loglevel=error
	touch $@

system-deps:
	@scripts/install-system-deps.sh

bench: system-deps $(VENV)/.installed   # full run, < 10 min; `make bench ARGS=--quick` for 2 min
	$(BIN)/python -m bench $(ARGS)

# Pins what is not pinned yet and keeps every pin there is (a new dependency gets
# its latest release); `make lock UPGRADE=1` resolves everything afresh.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet $(if $(UPGRADE),,-c constraints.txt) \
	  -e '.[dev]' async-timeout  # redis needs it on Python < 3.11.3
	(echo "# Every Python dependency (runtime and dev), pinned. Refresh: make lock"; \
	 .lock-venv/bin/pip freeze --exclude-editable) > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(TOOLS) tools/*/node_modules .pytest_cache .mypy_cache .ruff_cache build
	find src -name '*.so' -delete
