# bertkit set-up. `make demo` runs the main job; `make test` runs lint and the test suite.
# Both create the virtualenv on first use. torch is pinned to the CPU build 2.13.0, which
# pip takes from this machine kind's local wheel (a bare `torch` would pull a multi-GB CUDA
# build).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test,viz,onnx,server]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bertkit demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/forward.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
