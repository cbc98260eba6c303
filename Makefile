# `make run` and `make test` work on a fresh clone: with no virtual environment active they create
# and use ./.venv, so a system Python marked externally managed (PEP 668) is never installed into.
# With one active (VIRTUAL_ENV set), that one is used. PYTHON is the interpreter that creates .venv.
PYTHON ?= python3
VENV := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
VENV_PYTHON := $(VENV)/bin/python
EXTRAS ?= test
# The stamp lives in the environment it describes and records the interpreter it was made with:
# another venv, or the same folder rebuilt with another Python, means installing again.
STAMP := $(VENV)/.implicit-nn-installed
INTERPRETER := $(shell $(VENV_PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])' 2>/dev/null)
ifneq ($(INTERPRETER),$(shell cat $(STAMP) 2>/dev/null))
.PHONY: $(STAMP)
endif

.PHONY: install run test bench clean

ifdef VIRTUAL_ENV
$(VENV_PYTHON):
	@echo "make: $(VENV_PYTHON) not found in the active VIRTUAL_ENV" >&2; exit 1
else
$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV) || { echo "make: '$(PYTHON) -m venv' failed (Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
endif

# The install ends by compiling the CPU kernels into numba's cache (half a minute, once), so that
# no run, `make run`'s first included, waits for them.
$(STAMP): pyproject.toml | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install -e '.[$(EXTRAS)]'
	$(VENV_PYTHON) -m implicit_nn compile
	@$(VENV_PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])' > $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p outputs && $(VENV_PYTHON) -m implicit_nn train inputs/simulparams.dat

test: $(STAMP)
	$(VENV_PYTHON) -m pytest -q

bench: $(STAMP)
	$(VENV_PYTHON) benchmarks/bench_engine.py

clean:
	rm -f $(STAMP)
