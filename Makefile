# Two entry points for a fresh machine (see README):  make reproduce  |  make test
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch 2.13.0 is on the project machines' local disk; override for a GPU build,
# e.g. make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126".
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.tdpcr-installed

.PHONY: setup reproduce reproduce-full test test-all test-wheel lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	# satellite-cloud-generator (pyproject's optional `synth` extra) declares torchvision but never
	# imports it; installing it with its dependencies would replace the CPU torch by a CUDA build.
	$(BIN)/python -m pip install -q --no-deps satellite-cloud-generator==0.4
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

setup: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/tdpcr reproduce

reproduce-full: $(STAMP)
	$(BIN)/tdpcr reproduce --full

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

# Build the wheel, install it into a fresh venv and run the CLI from a temporary folder.
test-wheel: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests/test_packaging.py

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) reports/executed reports/metrics reports/figures
