# selfprompt-kit: one target per job. `make help` lists them.
# Two commands do everything on a fresh machine: `make reproduce` and `make test`;
# both build the virtual environment (.venv) first when it is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

# What to reproduce (override on the command line: make reproduce K="10 20" FOLDS=0)
MODEL    ?= vit_b
DATASET  ?= kvasir
K        ?= 10 20 40 all
FOLDS    ?= 0 1 2 3 4
PRESETS  ?= paper corrected
SEED     ?= 42
# Offline route: a folder or URL holding the official files (checked all the same)
MIRROR   ?=
export SELFPROMPT_MIRROR := $(or $(MIRROR),$(SELFPROMPT_MIRROR))

DATA_DIR_kvasir   := data/kvasir-seg
DATA_DIR_isic2018 := data/isic2018
DATA_DIR = $(DATA_DIR_$(DATASET))
RUN_DIR  = reports/runs/$(DATASET)/$(MODEL)

.PHONY: help venv test test-fast reproduce checkpoints data assets embed sweep summary \
        smoke lab bench lint lock clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements-lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-lock.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed ## create .venv with the pinned dependencies

test: $(VENV)/.installed ## run every test (unit, end-to-end, notebooks)
	$(PY) -m pytest tests

test-fast: $(VENV)/.installed ## unit tests only (no end-to-end, no notebooks)
	$(PY) -m pytest tests -m "not slow"

checkpoints: $(VENV)/.installed ## fetch a SAM checkpoint (MODEL=vit_b|vit_l|vit_h|vit_t)
	$(PY) -m selfprompt fetch checkpoint --model $(MODEL)

data: $(VENV)/.installed ## fetch a data set (DATASET=kvasir|isic2018)
	$(PY) -m selfprompt fetch data --dataset $(DATASET)

assets: $(VENV)/.installed ## list checkpoints and data sets: present, verified, missing
	$(PY) -m selfprompt assets

embed: checkpoints data ## encode every image once into the cache
	$(PY) -m selfprompt embed $(DATA_DIR) --backbone $(MODEL)

sweep: embed ## k-shot 5-fold sweep from the command line (both presets)
	$(PY) -m selfprompt run $(DATA_DIR) --backbone $(MODEL) --k $(K) --folds $(FOLDS) \
		--presets $(PRESETS) --seed $(SEED) --out $(RUN_DIR)

reproduce: sweep ## the main job: fetch, embed, sweep, tables under reports/

smoke: $(VENV)/.installed ## a CI-sized run: tiny backbone, a few images, no download
	$(PY) -m selfprompt run $(or $(wildcard ../shared/data/kvasir-seg),data/synthetic) \
		--backbone tiny --limit 20 --k 2 --seed $(SEED) --out reports/runs/smoke

lab: $(VENV)/.installed ## JupyterLab on the notebooks, with the kit's environment
	$(VENV)/bin/jupyter lab notebooks/

lint: $(VENV)/.installed ## flake8 over the package, tests and benchmarks
	$(PY) -m flake8 --max-line-length 100 selfprompt tests benchmarks

lock: $(VENV)/.installed ## rewrite requirements-lock.txt from the current .venv
	{ head -2 requirements-lock.txt; $(PY) -m pip freeze --exclude-editable; } > requirements-lock.tmp
	mv requirements-lock.tmp requirements-lock.txt

clean: ## remove generated results (keeps data, checkpoints, embedding cache)
	rm -rf reports/runs reports/figures reports/*.md reports/*.csv .pytest_cache

distclean: clean ## also remove the environment and the embedding cache
	rm -rf $(VENV) data/embeddings
