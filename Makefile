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
# Which k training images each fold labels: random (the paper's draw) | kcenter | medoids
# (chosen from the embeddings alone: selfprompt.shots). Chosen shots keep their folds in a
# subfolder of their own (k10/medoids/fold0.json) and their own lines in the report.
SHOTS    ?= random
# Offline route: a folder or URL holding the official files (checked all the same)
MIRROR   ?=
export SELFPROMPT_MIRROR := $(or $(MIRROR),$(SELFPROMPT_MIRROR))

# Data sets: the registry's names (python -m selfprompt datasets), or a name of your own.
# Each has its folder, DATA_DIR_<name>, as published (no renaming): set it on the command
# line to use a copy elsewhere, e.g. make reproduce DATASETS="kvasir ph2" \
#   DATA_DIR_ph2="/data/PH2Dataset". An own set: DATASETS=mine DATA_DIR_mine=/path, plus a
# declared layout where it is not detected: IMAGES_mine='img/*.png' MASKS_mine=gt (each
# mask pairs with the image whose name begins its own; PAIR_mine=_mask or a regex with
# (?P<key>...) where names pair otherwise; write $$ for $). IMAGES/MASKS/PAIR without a
# suffix apply to every data set; folders or glob patterns under DATA_DIR_<name>.
DATA_DIR_kvasir       := data/kvasir-seg
DATA_DIR_isic2018     := data/isic2018
DATA_DIR_cvc-clinicdb := data/cvc-clinicdb
DATA_DIR_ph2          := data/ph2
DATA_DIR_busi         := data/busi
# the registry's sets and those it can download (selfprompt.datasets.catalog; tests keep them equal)
CATALOG   := isic2018 kvasir cvc-clinicdb ph2 busi
DOWNLOADS := isic2018 kvasir
IMAGES    ?=
MASKS     ?=
PAIR      ?=
# a folder the user named (command line or environment) is used as it is, never fetched
user_dir   = $(filter command line environment override,$(origin DATA_DIR_$(1)))
data_dir   = $(if $(call user_dir,$(1)),$(DATA_DIR_$(1)),$(or \
             $(SELFPROMPT_DATA_DIR),$(DATA_DIR_$(1)),data/$(1)))
images_of  = $(or $(IMAGES_$(1)),$(IMAGES))
masks_of   = $(or $(MASKS_$(1)),$(MASKS))
pair_of    = $(or $(PAIR_$(1)),$(PAIR))
declared   = $(call images_of,$(1))$(call masks_of,$(1))$(call pair_of,$(1))
# the declared layout as command-line options, and as notebook 05 reads it (environment)
layout_args = $(if $(call declared,$(1)),$(if $(filter $(CATALOG),$(1)),--dataset $(1)) \
              $(if $(call images_of,$(1)),--images '$(call images_of,$(1))') \
              $(if $(call masks_of,$(1)),--masks '$(call masks_of,$(1))') \
              $(if $(call pair_of,$(1)),--pair '$(call pair_of,$(1))'))
layout_env  = SELFPROMPT_IMAGES='$(call images_of,$(1))' SELFPROMPT_MASKS='$(call \
              masks_of,$(1))' SELFPROMPT_PAIR='$(call pair_of,$(1))'
DATA_DIR = $(call data_dir,$(DATASET))
RUN_DIR  = reports/runs/$(DATASET)/$(MODEL)

.PHONY: help venv test test-fast reproduce folds checkpoints data datasets assets embed sweep summary \
        smoke lab bench notebook-outputs lint lock test-min clean distclean \
        reference verify-reference claims ablations reference-ablations reference-beyond reference-bench \
        classroom-check exercises book \
        bundle install-offline

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements-lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-lock.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed ## create .venv with the pinned dependencies

test: $(VENV)/.installed ## run every test (unit, end-to-end, notebooks under nbval)
	$(PY) -m pytest tests notebooks

test-fast: $(VENV)/.installed ## unit tests only (no end-to-end, no notebooks)
	$(PY) -m pytest tests -m "not slow"

checkpoints: $(VENV)/.installed ## fetch a checkpoint (MODEL=vit_b|vit_l|vit_h|vit_t|medsam_lite; tiny: none)
	$(if $(filter tiny,$(MODEL)),@echo "tiny: generated from a seed on first use",$(PY) -m selfprompt fetch checkpoint --model $(MODEL))

data: $(VENV)/.installed ## fetch a data set (DATASET=kvasir|isic2018; others: where to get them)
	$(PY) -m selfprompt fetch data --dataset $(DATASET)

datasets: $(VENV)/.installed ## the known public data sets: layout, licence, citation, source
	$(PY) -m selfprompt datasets

assets: $(VENV)/.installed ## list checkpoints and data sets: present, verified, missing
	$(PY) -m selfprompt assets

embed: checkpoints $(if $(call user_dir,$(DATASET)),,data) ## encode every image once into the cache
	$(PY) -m selfprompt embed '$(DATA_DIR)' $(call layout_args,$(DATASET)) --backbone $(MODEL)

sweep: embed ## k-shot 5-fold sweep from the command line (both presets)
	$(PY) -m selfprompt run '$(DATA_DIR)' $(call layout_args,$(DATASET)) --backbone $(MODEL) \
		--k $(K) --folds $(FOLDS) --presets $(PRESETS) --seed $(SEED) --out $(RUN_DIR) \
		--dataset-name $(DATASET)

# --- notebooks: `make reproduce` = fetch + embed + notebook 05 per fold + notebook 06 ---------
# Each (data set, backbone, preset, k, fold) is one real file target: the fold's JSON, which
# Experiment.run_fold writes last (after its CSV, both atomically). Make skips a finished
# fold on rerun; an interrupted one has no JSON and is redone; a CSV without its JSON is
# never taken for finished. Executed notebooks are written to a temporary name, then moved.
# Editing the package does not invalidate finished folds: `make clean` to recompute.
DATASETS  ?= $(DATASET)
DEVICE    ?=
LIMIT     ?=
# after each fold, one line: fold i of N, time so far and left, Dice so far (QUIET=1: none)
QUIET     ?=
RUNS      := reports/runs
PAPERMILL := $(VENV)/bin/papermill --no-progress-bar --log-level WARNING
_part      = $(word $(1),$(subst /, ,$*))
# a fold's stem: <data set>/<backbone>/<preset>/k<k>/[<shots>/]fold<f> (random: no folder)
shots_dir  = $(if $(filter-out random,$(SHOTS)),$(SHOTS)/)
_shots     = $(if $(word 6,$(subst /, ,$*)),$(call _part,5),random)
_fold      = $(patsubst fold%,%,$(lastword $(subst /, ,$*)))
FOLD_TARGETS := $(foreach d,$(DATASETS),$(foreach p,$(PRESETS),$(foreach k,$(K),$(foreach \
                  f,$(FOLDS),$(RUNS)/$(d)/$(MODEL)/$(p)/k$(k)/$(shots_dir)fold$(f).json))))

.PHONY: report
.SECONDEXPANSION:
# never files: run when a fold needs them, not again once every fold is finished
.SECONDARY: $(foreach d,$(DATASETS),preflight-$(d) fetch-$(d) embed-$(d))

# JOBS=n runs n folds side by side once the embeddings are cached (make -j), each with an
# n-th of the cores (OMP_NUM_THREADS, which torch, OpenBLAS and the kit follow): a fold's
# Python work, mask reading and small matrix products do not use many cores well.
JOBS  ?= 1
NPROC := $(shell nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
fold_env = $(if $(filter-out 1,$(JOBS)),OMP_NUM_THREADS=$(shell \
           n=$$(( $(NPROC) / $(JOBS) )); echo $$(( n > 0 ? n : 1 ))))

reproduce: ## the main job: fetch, embed, notebook 05 per fold, report under reports/ (JOBS=n: n folds at once)
	@$(MAKE) --no-print-directory $(if $(filter-out 1,$(JOBS)),-j$(JOBS)) folds \
		PROGRESS_SINCE=$$(date +%s)
	@$(MAKE) --no-print-directory report

# the k = all folds first: each fits on every shot (about a minute on one core), so that
# under JOBS the short folds fill the cores at the end instead of one long fold alone
KALL_TARGETS := $(foreach t,$(FOLD_TARGETS),$(if $(findstring /kall/,$(t)),$(t)))
folds: $(KALL_TARGETS) $(filter-out $(KALL_TARGETS),$(FOLD_TARGETS))

# preflight: a missing folder of a set obtained by hand (or of your own) stops here, saying
# where to get it; fetch: only the registry's downloads, in their default folders
preflight-%: $(VENV)/.installed
	@$(PY) -m selfprompt preflight --model $(MODEL) --dataset $* \
		--data-dir '$(call data_dir,$*)'

fetch-%: preflight-%
	$(if $(filter tiny,$(MODEL)),,$(PY) -m selfprompt fetch checkpoint --model $(MODEL))
	$(if $(or $(SELFPROMPT_DATA_DIR),$(call user_dir,$*),$(filter-out $(DOWNLOADS),$*)),,$(PY) \
		-m selfprompt fetch data --dataset $*)

embed-%: fetch-%
	$(PY) -m selfprompt embed '$(call data_dir,$*)' $(call layout_args,$*) --backbone $(MODEL) \
		$(if $(LIMIT),--limit $(LIMIT)) $(if $(DEVICE),--device $(DEVICE))

# the executed notebook of a fold: _nb (temporary: .tmp); chosen shots add their name
_nb = $(RUNS)/$(call _part,1)/$(call _part,2)/notebooks/05_evaluate_$(call \
      _part,3)_$(call _part,4)_$(if $(filter-out random,$(_shots)),$(_shots)_)fold$(_fold)$(1).ipynb
$(RUNS)/%.json: | embed-$$(firstword $$(subst /, ,$$*))
	@mkdir -p $(dir $(call _nb,))
	$(call layout_env,$(call _part,1)) $(fold_env) $(PAPERMILL) notebooks/05_evaluate.ipynb \
		$(call _nb,.tmp) \
		-p data_root $(abspath $(call data_dir,$(call _part,1))) -p dataset $(call _part,1) \
		-p backbone $(call _part,2) -p preset $(call _part,3) \
		-p k $(patsubst k%,%,$(call _part,4)) -p fold $(_fold) -p shots $(_shots) \
		-p seed $(SEED) -p limit $(or $(LIMIT),None) $(if $(DEVICE),-p device $(DEVICE)) \
		-p out_dir $(abspath $(RUNS)/$(call _part,1)/$(call _part,2))
	test -f $@
	mv $(call _nb,.tmp) $(call _nb,)
	@-$(if $(PROGRESS_SINCE),$(if $(QUIET),,$(PY) -m selfprompt progress --since \
		$(PROGRESS_SINCE) $(FOLD_TARGETS)))

# The paper preset replays one random stream across folds: fold f starts where folds < f
# left it, read from their JSON when finished and recomputed (classifier fits included)
# when not. Under JOBS, a k's paper folds therefore run in the order FOLDS gives them
# (order-only: never a reason to redo a finished fold, and no fold that was not asked for).
# fold_pairs: consecutive FOLDS as "before:after" (FOLDS="0 1 2" gives 0:1 1:2)
fold_pairs = $(filter-out x:% %:,$(join $(addsuffix :,x $(FOLDS)),$(FOLDS)))
paper_fold = $(RUNS)/$(1)/$(MODEL)/paper/k$(2)/$(shots_dir)fold$(3).json
$(if $(filter paper,$(PRESETS)),$(foreach d,$(DATASETS),$(foreach k,$(K),$(foreach \
  pr,$(fold_pairs),$(eval $(call paper_fold,$(d),$(k),$(lastword $(subst :, ,$(pr))))\
  : | $(call paper_fold,$(d),$(k),$(firstword $(subst :, ,$(pr)))))))))

report: $(VENV)/.installed ## tables (Markdown, CSV) and figures under reports/ from finished runs
	@mkdir -p $(RUNS)
	$(PAPERMILL) notebooks/06_report.ipynb $(RUNS)/.06_report.tmp.ipynb \
		-p runs_dir $(abspath $(RUNS)) -p out_dir $(abspath reports)
	mv $(RUNS)/.06_report.tmp.ipynb $(RUNS)/06_report.ipynb

# --- the committed references: real weights on all of Kvasir-SEG -----------------------------
# REF_MODEL=medsam_lite (LiteMedSAM, bundled, box-trained) or vit_t (MobileSAM, trained with
# points and boxes). `make reference` reruns the whole sweep (5 folds x k x both presets x
# the paper's variants) and rewrites reports/reference/kvasir/$(REF_MODEL)/; `make
# verify-reference` recomputes one slice of it from the committed folds and prints the
# largest per-image difference.
REF_MODEL   ?= medsam_lite
REF_DIR     := reports/reference/kvasir/$(REF_MODEL)
REF_DATA    := $(or $(SELFPROMPT_DATA_DIR),$(wildcard data/kvasir-seg),$(wildcard ../shared/data/kvasir-seg),data/kvasir-seg)
REF_K       ?= 10
REF_FOLD    ?= 0
REF_IMAGES  ?=
reference: $(VENV)/.installed ## a committed reference: full sweep on Kvasir-SEG (REF_MODEL=medsam_lite|vit_t), then its report
	$(MAKE) --no-print-directory reproduce MODEL=$(REF_MODEL) DATASETS=kvasir \
		SELFPROMPT_DATA_DIR=$(abspath $(REF_DATA)) K="10 20 40 all" FOLDS="0 1 2 3 4" \
		PRESETS="paper corrected"
	$(PY) -m selfprompt reference write $(RUNS)/kvasir/$(REF_MODEL) $(REF_DIR) \
		--data $(abspath $(REF_DATA))

verify-reference: $(VENV)/.installed ## recompute k=10 fold 0 of the reference; largest per-image difference
	$(PY) -m selfprompt reference verify $(REF_DIR) --data $(REF_DATA) --k $(REF_K) \
		--fold $(REF_FOLD) $(if $(REF_IMAGES),--images $(REF_IMAGES))

# The numbers README.md and docs/reference.md quote sit in generated blocks
# (<!-- claims:NAME --> ... <!-- /claims -->, selfprompt.evaluation.claims), computed from the
# committed rows: `make claims` rewrites them after a study is regenerated, CLAIMS_ARGS=--check
# only names a stale block (exit status 1).
CLAIMS_ARGS ?=
claims: $(VENV)/.installed ## rewrite the README's and docs/reference.md's result blocks from the committed rows
	$(PY) -m selfprompt reference claims $(CLAIMS_ARGS)

# --- baselines and ablations (selfprompt.evaluation.ablations): same folds, shots, cache ---
# Each study is resumable fold by fold. On a CPU every study decodes several prompts an
# image: ABLATION_TEST scores the first N test images of each fold (empty: all of them).
# SEEDS="42 43 44" repeats every study's cross-validation under those fold seeds (other
# seeds than SEED in <study>/seed<N>/); empty: each study's own seeds, else SEED alone.
SEEDS            ?=
ABLATION_MODEL   ?= medsam_lite
ABLATION_STUDIES ?= baselines finetune strategies classifiers shots
ABLATION_TEST    ?= 40
ABLATION_RUNS     = reports/ablations/runs/$(DATASET)/$(ABLATION_MODEL)
ablations: $(VENV)/.installed ## baselines and ablations -> reports/ablations/<data>/<model>/ablations.md
	$(PY) -m selfprompt ablations run $(call data_dir,$(DATASET)) $(call layout_args,$(DATASET)) \
		--backbone $(ABLATION_MODEL) --dataset-name $(DATASET) --studies $(ABLATION_STUDIES) \
		--folds $(FOLDS) --seed $(SEED) $(if $(SEEDS),--seeds $(SEEDS)) \
		$(if $(ABLATION_TEST),--test-per-fold $(ABLATION_TEST)) --out $(ABLATION_RUNS)
	$(PY) -m selfprompt ablations write $(ABLATION_RUNS) reports/ablations/$(DATASET)/$(ABLATION_MODEL)

reference-ablations: $(VENV)/.installed ## the committed ablations beside a reference (REF_MODEL, ABLATION_STUDIES)
	$(MAKE) --no-print-directory ablations DATASET=kvasir ABLATION_MODEL=$(REF_MODEL) \
		FOLDS="0 1 2 3 4" DATA_DIR_kvasir=$(abspath $(REF_DATA))
	$(PY) -m selfprompt ablations write reports/ablations/runs/kvasir/$(REF_MODEL) $(REF_DIR)/ablations

# The committed rows score the first 40 test images of each fold for `selection` and 20
# for `auto` (37 candidates) and `persam` (PerSAM-F trains on every test image): what two
# CPU cores do in about an hour a study. BEYOND_TEST=N scores N for every study.
BEYOND_STUDIES   ?= selection auto persam
BEYOND_TEST      ?=
BEYOND_TEST_selection = 40
BEYOND_TEST_auto      = 20
BEYOND_TEST_persam    = 20
reference-beyond: $(VENV)/.installed ## beyond the paper: shot selection, auto, PerSAM on the reference's folds
	$(foreach s,$(BEYOND_STUDIES),$(PY) -m selfprompt ablations run $(abspath $(REF_DATA)) \
		--backbone $(REF_MODEL) --dataset-name kvasir --studies $(s) --folds 0 1 2 3 4 \
		--seed $(SEED) $(if $(SEEDS),--seeds $(SEEDS)) \
		--test-per-fold $(or $(BEYOND_TEST),$(BEYOND_TEST_$(s))) \
		--out reports/ablations/runs/kvasir/$(REF_MODEL)-beyond &&) true
	$(PY) -m selfprompt ablations write reports/ablations/runs/kvasir/$(REF_MODEL)-beyond \
		$(REF_DIR)/beyond --studies $(BEYOND_STUDIES)

exercises: $(VENV)/.installed ## the student notebook from the solutions (cells tagged `solution`)
	$(PY) -m selfprompt exercises notebooks/exercises/solutions.ipynb notebooks/exercises/exercises.ipynb

classroom-check: $(VENV)/.installed ## before a class: environment, model, data, cache, every notebook run and timed
	$(PY) -m selfprompt classroom --report reports/classroom-check.md --keep reports/executed

# --- the book: the executed notebooks and the guide as a static HTML site -----------------
# reports/book/index.html opens from disk (no server, no network). Every notebook is run
# with its defaults: on a machine with Kvasir-SEG, real weights and real figures. A cell
# that errors stops it (exit status 1). BOOK_EXECUTED=reports/executed renders the copies
# `make classroom-check` kept instead of running the notebooks again. Measured on 2 shared
# CPU cores, real Kvasir-SEG, medsam_lite, warm embedding cache: 4 min the first time, 2 min
# when notebooks 05 and 08 find their folds from an earlier run; 17 MB (pages 9.5 MB, ipynb/).
BOOK_OUT      ?= reports/book
BOOK_EXECUTED ?=
book: $(VENV)/.installed ## the tutorial to read without running: executed notebooks + guide as HTML
	$(PY) -m selfprompt book --out $(BOOK_OUT) $(if $(BOOK_EXECUTED),--executed $(BOOK_EXECUTED))

# --- the offline classroom bundle (selfprompt.teaching.bundle): one folder for a USB stick --------
# `make bundle` (network, the instructor's data) writes BUNDLE: the lock's wheels for the lab
# machines (BUNDLE_PLATFORM: a pip platform tag, BUNDLE_PYTHON: X.Y; default: this machine),
# the kit's wheel and source, the images the notebooks read (from BUNDLE_DATA, default:
# where the notebooks find Kvasir-SEG) and their medsam_lite embeddings, a manifest (sha256).
# `make install-offline BUNDLE=...` needs no network and no .venv: it checks the bundle,
# creates .venv from its wheels (index off), places data and embeddings, runs the check.
BUNDLE          ?= dist/classroom-bundle
BUNDLE_DATA     ?=
BUNDLE_PLATFORM ?=
BUNDLE_PYTHON   ?=
CHECK_NOTEBOOKS ?=
bundle: $(VENV)/.installed ## offline classroom bundle (wheels, data subset, embeddings) -> BUNDLE
	$(PY) -m selfprompt bundle build --out '$(BUNDLE)' $(if $(BUNDLE_DATA),--data '$(BUNDLE_DATA)') \
		$(if $(BUNDLE_PLATFORM),--platform $(BUNDLE_PLATFORM)) \
		$(if $(BUNDLE_PYTHON),--python-version $(BUNDLE_PYTHON))

install-offline: ## no network: .venv, data and embeddings from BUNDLE=..., then the classroom check
	@test -f '$(BUNDLE)/manifest.json' || { echo "no $(BUNDLE)/manifest.json: give the bundle's \
		folder, make install-offline BUNDLE=/media/usb/classroom-bundle" >&2; exit 2; }
	$(PYTHON) -m selfprompt bundle install '$(BUNDLE)' --venv $(VENV) --kit . --no-check
	touch $(VENV)/.installed
	$(PY) -m selfprompt classroom --report reports/classroom-check.md \
		$(if $(CHECK_NOTEBOOKS),--notebooks $(filter-out none,$(CHECK_NOTEBOOKS)))

SMOKE_DATA := $(or $(wildcard ../shared/data/kvasir-seg),data/synthetic)
smoke: $(VENV)/.installed ## a CI-sized run: tiny backbone, a few images, no download
	test -d $(SMOKE_DATA) || $(PY) -m selfprompt synthetic $(SMOKE_DATA) --n 20
	$(PY) -m selfprompt run $(SMOKE_DATA) --backbone tiny --limit 20 --k 2 --seed $(SEED) \
		--out reports/runs/smoke

# make bench: small by default (minutes on 2 cores); BENCH_ARGS for the full size, e.g.
# BENCH_ARGS="--images 1000 --k 10 20 40 all --speed 'tiny:1,4,8;vit_t:1,4,8;vit_b:1,4,8' --reps 3"
BENCH_ARGS ?=
bench: $(VENV)/.installed ## encoder passes, speed, arithmetic rate, memory -> reports/bench.md
	$(PY) -m benchmarks.bench $(BENCH_ARGS)

# make reference-bench: the committed CPU table, on the reference's data: section 5 on real
# weights over every Kvasir-SEG image (bf16 too), and the sweep that `make reference` (or
# `make reproduce MODEL=medsam_lite`) left in RUNS, timed. The GPU's table comes from
# benchmarks/gpu.sh, run on a GPU machine (benchmarks/README.md).
REF_BENCH_ARGS ?= --speed 'tiny:1,4;vit_t:1;medsam_lite:1,4;vit_b:1' --reps 3 \
                  --stages-images 1000 --stages-bf16
reference-bench: $(VENV)/.installed ## the committed CPU bench table (after `make reference`: it times that sweep)
	$(PY) -m benchmarks.bench --data $(REF_DATA) $(REF_BENCH_ARGS) \
		--sweep-runs $(RUNS)/kvasir/$(REF_MODEL) --out reports/reference/bench.md

lab: $(VENV)/.installed ## JupyterLab on the notebooks, START_HERE.md open, with the kit's environment
	$(PY) -m selfprompt lab $(LAB_ARGS)

notebook-outputs: $(VENV)/.installed ## re-record the outputs nbval checks (after a deliberate change)
	$(PY) tests/refresh_notebook_outputs.py

lint: $(VENV)/.installed ## flake8 over the package, tests and benchmarks
	$(PY) -m flake8 --max-line-length 100 selfprompt tests benchmarks

# The lock: pyproject.toml's ranges resolved once for every platform and Python the kit
# supports (uv's universal resolution: each pin that only some platforms need carries an
# environment marker, which pip evaluates). Versions already in the lock are kept unless
# pyproject.toml rules them out; LOCK_ARGS=--upgrade moves every pin to the newest allowed.
# uv comes from PyPI into .uv/ unless UV names one.
UV_VERSION ?= 0.13.9
UV         ?= .uv/bin/uv
LOCK_ARGS  ?=
.uv/bin/uv:
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install -q uv==$(UV_VERSION)

lock: $(filter .uv/bin/uv,$(UV)) ## rewrite requirements-lock.txt: pyproject.toml resolved for every platform
	$(UV) pip compile pyproject.toml --extra notebooks --extra test --universal \
		--python $(PYTHON) --python-version 3.10 --no-header --no-annotate $(LOCK_ARGS) -o requirements-lock.txt
	@{ printf '%s\n' "$(LOCK_HEADER_1)" "$(LOCK_HEADER_2)" "$(LOCK_HEADER_3)"; \
		grep -v '^# \(Exact versions\|(Linux\|say where\)' requirements-lock.txt; } > requirements-lock.tmp
	mv requirements-lock.tmp requirements-lock.txt
LOCK_HEADER_1 := \# Exact versions make venv and CI install: pyproject.toml resolved for every platform
LOCK_HEADER_2 := \# (Linux x86_64/aarch64, macOS arm64, Windows amd64; Python 3.10-3.13). Markers after ;
LOCK_HEADER_3 := \# say where a pin applies (pip evaluates them). Regenerate with make lock.

# The oldest versions pyproject.toml allows (each lower bound made an exact pin by
# tests/min_dependencies.py), in .venv-min, and the fast tests on them; all but the one
# that checks the environment is the lock's (this one is not, by design). Measured on 2
# shared CPU cores: 2-4 min to build (torch 2.13.0 and its CUDA wheels, about 2 GB, from
# PyPI or pip's cache), 8-13 min of tests (537 passed).
TEST_MIN_ARGS ?=
test-min: ## the fast tests on the oldest versions pyproject.toml allows (.venv-min)
	rm -rf .venv-min
	$(PYTHON) -m venv .venv-min
	.venv-min/bin/python -m pip install -q --upgrade pip
	$(PYTHON) tests/min_dependencies.py > .venv-min/constraints.txt
	.venv-min/bin/python -m pip install -q -c .venv-min/constraints.txt -e ".[notebooks,test]"
	.venv-min/bin/python -m pytest tests -m "not slow" --deselect \
		tests/test_classroom.py::test_the_pinned_versions_are_read_from_the_lock_and_a_mismatch_says_what_to_run \
		$(TEST_MIN_ARGS)

clean: ## remove generated results (keeps data, checkpoints, embedding cache, reports/reference)
	rm -rf reports/runs reports/ablations reports/figures reports/*.md reports/*.csv \
		reports/book reports/book.partial reports/executed .pytest_cache

distclean: clean ## also remove the environment and the embedding cache
	rm -rf $(VENV) data/embeddings
