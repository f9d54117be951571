# Two entry points for a fresh machine (see README):  make reproduce  |  make test
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch 2.13.0 is on the project machines' local disk; override for a GPU build,
# e.g. make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126".
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.tdpcr-installed

.PHONY: setup lab git-filter report reproduce reproduce-quick reproduce-full readme-verdicts test test-all test-browser test-wheel lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	# satellite-cloud-generator (pyproject's optional `synth` extra) declares torchvision but never
	# imports it; installing it with its dependencies would replace the CPU torch by a CUDA build.
	$(BIN)/python -m pip install -q --no-deps satellite-cloud-generator==0.4
	# The kernel the notebooks name (python3), installed into the venv, where JupyterLab finds it.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	$(MAKE) --no-print-directory git-filter
	touch $@

setup: $(STAMP)

# Keep notebooks output-free in git: .gitattributes routes *.ipynb through the nbstripout filter
# defined here (in .git/config), so `git add`/`git status` see notebooks without outputs.
# --keep-id keeps the cell ids jupytext wrote. Idempotent; a copy without .git (a tarball) skips it.
git-filter:
	@if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then \
	  git config filter.nbstripout.clean '"$(abspath $(BIN))/python" -m nbstripout --keep-id' && \
	  git config filter.nbstripout.smudge cat && \
	  git config diff.ipynb.textconv '"$(abspath $(BIN))/python" -m nbstripout -t --keep-id' && \
	  echo "git filter nbstripout installed (notebooks are committed without outputs)"; \
	fi

# JupyterLab on this checkout, opened at notebooks/; jupytext (installed with it) keeps each
# .ipynb and its .py twin in step on save (jupytext.toml). Pass options with LAB_ARGS="--port 8890".
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks $(LAB_ARGS)

reproduce: $(STAMP)
	$(BIN)/tdpcr reproduce

# reports/html/index.html: the executed notebooks and results/ablations/verdicts as HTML.
report: $(STAMP)
	$(BIN)/tdpcr report html

reproduce-quick: $(STAMP)
	$(BIN)/tdpcr reproduce --quick

reproduce-full: $(STAMP)
	$(BIN)/tdpcr reproduce --full

# Rewrite reports/verdicts.md and the README's "What our runs show" section from
# reports/metrics/04_ablations.json (+ reproduce.json): never typed by hand.
readme-verdicts: $(STAMP)
	$(BIN)/tdpcr report verdicts --readme README.md

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Everything, slow, GPU and browser tests included (those that cannot run here skip with a reason).
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

# The real-browser check of notebook 05 (needs Debian's chromium and chromium-driver).
test-browser: $(STAMP)
	$(BIN)/python -m pytest -q -m browser -rs tests/plot/test_browser.py

# Build the wheel, install it into a fresh venv and run the CLI from a temporary folder.
test-wheel: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests/test_packaging.py

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all
	# engine ratio + bound (scene prediction) and checkpoint ratio, side by side in one process each
	$(BIN)/python -m benchmarks.engine_scene --repeats 3 --out reports/engine_scene.json
	$(BIN)/python -m benchmarks.checkpoint_async --preset full --rounds 5 --out reports/checkpoint_async.json

clean:
	rm -rf $(VENV) reports/executed reports/metrics reports/figures reports/smoke
