PYTHON ?= python3
STAMP := .installed

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p outputs && implicit-nn train inputs/simulparams.dat

test: $(STAMP)
	$(PYTHON) -m pytest -q

bench: $(STAMP)
	$(PYTHON) benchmarks/bench_engine.py

clean:
	rm -f $(STAMP)
