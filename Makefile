# arlab: `make lab` runs the course, `make test` proves it. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.arlab-installed
JOBS   ?= 2

.PHONY: setup lab test test-browser walkthrough checkpoints site bench bench-timed bench-gpu data clean help

help:
	@echo "make lab          open the course in JupyterLab (installs on first use)"
	@echo "make test         run every test (ARLAB_BUDGET=smoke)"
	@echo "make test-browser the widgets in JupyterLab in headless Chromium (build/browser/)"
	@echo "make checkpoints  train every walkthrough model at the cpu budget into checkpoints/ (hours on 2 cores; RESUME=1 keeps what still fits)"
	@echo "make walkthrough  execute the notebooks in place (cpu budget, checkpoints) + HTML in build/walkthrough/"
	@echo "make site         the course site (Jupyter Book) from the committed notebooks: build/site/"
	@echo "make bench        run the benchmarks and rewrite benchmarks/RESULTS.md"
	@echo "make bench-timed  quality at equal time beside the peers (about 75 minutes)"
	@echo "make bench-gpu    the GPU section: every model, samples as PNG (needs CUDA)"
	@echo "make mutation     measure the hidden tests by mutating every reference answer (~20 min)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "arlab: installing into $(VENV) (the first time takes a few minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)
	@echo "arlab: ready ($(VENV))"

lab: setup
	@echo "arlab: starting JupyterLab on notebooks/ (Ctrl-C to stop)"
	@$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

TEST_ENV := ARLAB_BUDGET=smoke MPLBACKEND=Agg OMP_NUM_THREADS=1

test: setup
	@echo "arlab: running the test suite with ARLAB_BUDGET=smoke on $(JOBS) workers"
	@$(TEST_ENV) $(BIN)/python -m pytest -n $(JOBS) -m "not grading_e2e" $(PYTEST_ARGS)
	@echo "arlab: whole autograde runs (real nbgrader, sandboxed)"
	@$(TEST_ENV) $(BIN)/python -m pytest -n $(JOBS) -m grading_e2e $(PYTEST_ARGS)

# Chromium from the distribution (Playwright's own browser download is not used), Playwright
# for Python into .venv; then the widgets in JupyterLab, seen by the browser.
test-browser: setup
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ echo "arlab: installing Chromium (apt-get)"; \
		  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@$(BIN)/python -c "import playwright" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet -e ".[browser]"
	@echo "arlab: widgets in JupyterLab in headless Chromium (screenshots in build/browser/)"
	@$(TEST_ENV) $(BIN)/python tests/browser/run.py --out build/browser

walkthrough: setup
	@$(BIN)/python -m arlab.walkthrough --budget cpu --in-place --out build/walkthrough $(NOTEBOOKS)

checkpoints: setup
	@$(BIN)/python -m arlab.checkpoints $(if $(RESUME),--resume) $(NOTEBOOKS)

# The notebooks as committed (never executed here), the homework introductions and the
# instructor's guide; config and table of contents in site/.
site: setup
	@$(BIN)/python -c "import jupyter_book" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet -e ".[site]"
	@$(BIN)/python -m arlab.site --out build/site

bench: setup
	@$(BIN)/python -m benchmarks.run --budgets smoke,cpu

bench-timed: setup
	@$(BIN)/python -m benchmarks.run --only timed --workers 2

bench-gpu: setup
	@$(BIN)/python -m benchmarks.run --only gpu --device cuda

mutation: setup
	@$(TEST_ENV) $(BIN)/python -m benchmarks.mutation $(MUTATION_ARGS)

data: setup
	@$(BIN)/python -m pip install --quiet -e ".[data]"
	@$(BIN)/python scripts/make_data.py

clean:
	rm -rf build .pytest_cache
