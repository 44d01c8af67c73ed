# ppocr-center-kit: export CenterLoss centers from any PaddleOCR rec config.
# Run from inside a PaddleOCR clone:  make -f <kit>/Makefile export CONFIG=... CHECKPOINT=...
# or from the kit:                    make export PADDLEOCR=<clone> CONFIG=... CHECKPOINT=...
KIT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV     := $(KIT)/.venv
PYTHON   ?= $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,python3)
PADDLEOCR ?=
CONFIG   ?=
CHECKPOINT ?=
MODEL    ?=
MODE     ?=
ENGINE   ?=
OUTPUT   ?=
OPTS     ?=
FORCE    ?=
CENTERS  ?=
DATA     ?=
BASELINE ?=
DICT     ?=
NPROC    ?=
VERBOSE  ?=
CENTER_WEIGHT ?=
EPOCHS   ?=
RUNS     ?=
BENCH_IMAGES ?= 64
BENCH_CONFIG ?=
BENCH_ONLY ?=
BENCH_LOSS_CLASSES ?=
PYTEST_ARGS ?=
TEST_JOBS ?= 2
# Python children write their bytecode here, never into the user's clone (users do not
# set PYTHONDONTWRITEBYTECODE; a clone without upstream's .gitignore would show it).
export PYTHONPYCACHEPREFIX ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ppocr-center-kit/pycache
# Every kit entry point (centerkit, tools/, demo/) finds the kit's modules through this one PYTHONPATH,
# and is told VERBOSE=1 (the children's known noise shown, centerkit.quiet) the same way.
KITPATH  = PYTHONPATH="$(KIT)/scripts$${PYTHONPATH:+:$$PYTHONPATH}" CENTERKIT_VERBOSE="$(VERBOSE)"
KITPY    = $(KITPATH) "$(PYTHON)" -m centerkit --invoked-from "$(CURDIR)"
TREE_ARG = --tree "$(PADDLEOCR)"
KITTOOL  = $(KITPATH) "$(PYTHON)" "$(KIT)/tools/$(1)"

.DEFAULT_GOAL := help
.PHONY: help setup version export check apply revert status refresh demo demo-ab test add-release inspect validate smoke bench train train-config ab confusions

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo ""
	@echo "  example, inside your PaddleOCR clone (<kit> is $(KIT)):"
	@echo "    make -f <kit>/Makefile export CONFIG=configs/rec/PP-OCRv5/PP-OCRv5_mobile_rec.yml CHECKPOINT=output/PP-OCRv5_mobile_rec/best_accuracy"
	@echo ""
	@echo "  variables, with their defaults (paths relative to the folder make runs in; CONFIG also to the clone):"
	@echo "    CONFIG=                 required: the training config (export, confusions, train, train-config, ab, validate)"
	@echo "    CHECKPOINT=             weights, path without .pdparams (export: else the config's Global.checkpoints,"
	@echo "                            then Global.pretrained_model, then the sub-model's pretrained)"
	@echo "    MODEL=Student           Distillation sub-model (train: a comma list, e.g. Student,Teacher; refused on a single model)"
	@echo "    MODE=eval               export: eval, or train (the stock script's semantics)"
	@echo "    ENGINE=auto             export: auto, inference or dygraph"
	@echo "    OUTPUT=train_center.pkl export: the pkl; its report and chart go beside it"
	@echo "    CENTERS=                required for train, train-config, inspect, validate: the centers pkl"
	@echo "    CENTER_WEIGHT=          train: the center loss weight (default: the config's CenterLoss weight, else 0.05);"
	@echo "                            ab: one weight, or a comma list (one arm each, Holm-corrected verdicts)"
	@echo "    OPTS=                   config overrides: OPTS='-o Key=value ...'"
	@echo "    FORCE=                  off; FORCE=1 replaces existing outputs"
	@echo "    NPROC=1                 processes, under paddle.distributed.launch"
	@echo "    DATA=eval               confusions: eval (the Eval set) or train (the Train lines)"
	@echo "    BASELINE=               confusions: an earlier confusions.json on the same lines, to compare with"
	@echo "    EPOCHS=                 ab: fine-tuning epochs per run (default: the config's Global.epoch_num)"
	@echo "    RUNS=3                  ab: seeds per arm"
	@echo "    DICT=                   inspect: the dictionary, to name the characters without a center"
	@echo "    PADDLEOCR=              the PaddleOCR clone (default: the clone around the folder make runs in)"
	@echo "    PYTHON=                 the Python with Paddle (default: the kit's .venv/bin/python if it exists, else python3)"
	@echo "    VERBOSE=                off; VERBOSE=1 shows the children's known noise lines and a Ctrl-C's traceback"
	@echo "    PADDLEOCR_VERSION=      the release, vX.Y.Z (default: the clone's tag, else its version file)"
	@echo "    BENCH_IMAGES=64         bench: images of the end-to-end part"
	@echo "    BENCH_CONFIG=           bench: the end-to-end config (default: the clone's SVTRv2 distillation config)"
	@echo "    BENCH_ONLY=             bench: parts, a comma list (default: accumulate,e2e,memory,loss,released)"
	@echo "    BENCH_LOSS_CLASSES=     bench: the loss part's dictionary sizes (default: 6625,18383)"
	@echo "    PYTEST_ARGS=            test: passed to pytest"
	@echo "    TEST_JOBS=2             test: pytest workers"
	@echo "    PYTHONPYCACHEPREFIX=    where Python writes bytecode (default: ~/.cache/ppocr-center-kit/pycache)"
	@echo "  more: README.md and docs/ in <kit>"

$(VENV)/.installed: $(KIT)/requirements.txt $(KIT)/requirements-dev.txt
	python3 -m venv "$(VENV)"
	"$(VENV)/bin/python" -m pip install -q --upgrade pip
	"$(VENV)/bin/python" -m pip install -q -r "$(KIT)/requirements-dev.txt"
	touch "$@"

setup: $(VENV)/.installed ## create .venv with the kit, paddlepaddle (CPU) and test tools
	@echo "kit environment ready: $(VENV)"

export: ## apply the series, export centers, revert (always): CONFIG= [CHECKPOINT= MODEL= MODE=eval|train ENGINE=auto|inference|dygraph OUTPUT= OPTS= FORCE=1 NPROC=N]
	@$(KITPY) export $(TREE_ARG) --config "$(CONFIG)" --checkpoint "$(CHECKPOINT)" --model "$(MODEL)" --mode "$(MODE)" --engine "$(ENGINE)" \
		--output "$(OUTPUT)" --opts "$(OPTS)" --force "$(FORCE)" --python "$(PYTHON)" --nproc "$(NPROC)"

confusions: ## which characters the model confuses, per pair (series applied, reverted): CONFIG= CHECKPOINT= [MODEL= DATA=eval|train ENGINE= OUTPUT=confusions.json CENTERS= BASELINE= OPTS= FORCE=1 NPROC=N]
	@$(KITPY) confusions $(TREE_ARG) --config "$(CONFIG)" --checkpoint "$(CHECKPOINT)" --model "$(MODEL)" --data "$(DATA)" \
		--engine "$(ENGINE)" --output "$(OUTPUT)" --centers "$(CENTERS)" --baseline "$(BASELINE)" --opts "$(OPTS)" \
		--force "$(FORCE)" --python "$(PYTHON)" --nproc "$(NPROC)"

TRAIN_ARGS = $(TREE_ARG) --config "$(CONFIG)" --centers "$(CENTERS)" --center-weight "$(CENTER_WEIGHT)" \
	--model "$(MODEL)" --checkpoint "$(CHECKPOINT)" --opts "$(OPTS)" --python "$(PYTHON)" --nproc "$(NPROC)"

train: ## apply the series, train with CenterLoss on the centers, revert (always): CONFIG= CENTERS= [CENTER_WEIGHT= MODEL= CHECKPOINT= OPTS= NPROC=N]
	@$(KITPY) train $(TRAIN_ARGS)

train-config: ## write the derived training config only (for your own launcher, between make apply and make revert)
	@$(KITPY) train $(TRAIN_ARGS) --config-only 1

ab: ## A/B: fine-tune RUNS seeds with CENTER_WEIGHT (or each of a list) and with 0, measure each by make confusions, compare: CONFIG= CHECKPOINT= CENTERS= [CENTER_WEIGHT=0.05|0.01,0.05 MODEL= EPOCHS= RUNS=3 OUTPUT=ab-<config>/ OPTS= NPROC=]
	@$(KITPY) ab $(TREE_ARG) --config "$(CONFIG)" --checkpoint "$(CHECKPOINT)" --centers "$(CENTERS)" --center-weight "$(CENTER_WEIGHT)" \
		--model "$(MODEL)" --epochs "$(EPOCHS)" --runs "$(RUNS)" --output "$(OUTPUT)" --opts "$(OPTS)" --python "$(PYTHON)" \
		--nproc "$(NPROC)" --engine "$(ENGINE)"

check: ## dry run: does the series for this clone's release apply cleanly? (for CI pinning a tag)
	@$(KITPY) check $(TREE_ARG)

apply: ## apply the series and leave it applied (until `make revert`)
	@$(KITPY) apply $(TREE_ARG)

revert: ## restore every patched file byte-for-byte (also after a killed run)
	@$(KITPY) revert $(TREE_ARG)

version: ## the kit's version, and each release's series with the sha256 reports record
	@$(KITPY) version

status: ## release, series, and whether the patches are applied or a run is open
	@$(KITPY) status $(TREE_ARG)

add-release: ## maintainers: prove a new PaddleOCR release on its tree, add it to patches/releases.tsv: TAG=vX.Y.Z [PADDLEOCR= SDIST_SHA256=]
	@$(KITPY) add_release $(TREE_ARG) --tag "$(TAG)" --sdist-sha256 "$(SDIST_SHA256)" --python "$(PYTHON)"

refresh: ## regenerate the patches from dropin/; PADDLEOCR=<clone after make apply, edited>: its edits too (quilt refresh)
	@$(KITPY) refresh --tree "$(PADDLEOCR)"

inspect: ## print a centers pkl's report, chart its samples per class: CENTERS= [DICT= FORCE=1]
	@$(call KITTOOL,inspect_centers.py) "$(CENTERS)" --dict "$(DICT)" --force "$(FORCE)"

validate: ## check a pkl against a CenterLoss config, load it with its CenterLoss: CENTERS= CONFIG= [PADDLEOCR=]
	@$(call KITTOOL,validate_centers.py) --centers "$(CENTERS)" --config "$(CONFIG)" $(TREE_ARG)

demo: $(VENV)/.installed ## built-in default: PaddleOCR's released PP-OCRv4 recognizer on look-alike lines: export, confusions, a 1-run A/B
	@$(KITPATH) "$(VENV)/bin/python" "$(KIT)/demo/run_demo.py" $(TREE_ARG) --invoked-from "$(CURDIR)"

demo-ab: $(VENV)/.installed ## the demo with make ab's 5 runs per arm and two center weights (the README's comparison)
	@$(KITPATH) "$(VENV)/bin/python" "$(KIT)/demo/run_demo.py" $(TREE_ARG) --invoked-from "$(CURDIR)" --runs 5

test: $(VENV)/.installed ## the test suite: every tier on every release (../shared's bundle or PADDLEOCR_REPO)
	cd "$(KIT)" && $(KITPATH) "$(VENV)/bin/python" tests/release_envs.py install && "$(VENV)/bin/python" -m pytest -n $(TEST_JOBS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

smoke: ## seconds-long real export on this clone (tiny config, stand-in checkpoint): for CI pinning a tag
	@$(call KITTOOL,smoke_export.py) $(TREE_ARG) --invoked-from "$(CURDIR)"

bench: ## speed and memory ratios, one run (docs/engines.md quotes them): [PADDLEOCR= BENCH_IMAGES=64 BENCH_CONFIG= BENCH_ONLY=loss,... BENCH_LOSS_CLASSES=6625,18383]
	@$(call KITTOOL,bench.py) $(TREE_ARG) --invoked-from "$(CURDIR)" \
		--images "$(BENCH_IMAGES)" --config "$(BENCH_CONFIG)" --only "$(BENCH_ONLY)" --loss-classes "$(BENCH_LOSS_CLASSES)"
