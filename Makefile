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
CENTER_WEIGHT ?=
BENCH_IMAGES ?= 64
BENCH_CONFIG ?=
BENCH_ONLY ?=
BENCH_LOSS_CLASSES ?=
PYTEST_ARGS ?=
TEST_JOBS ?= 2
# Python children write their bytecode here, never into the user's clone (users do not
# set PYTHONDONTWRITEBYTECODE; a clone without upstream's .gitignore would show it).
export PYTHONPYCACHEPREFIX ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ppocr-center-kit/pycache
# Every kit entry point (centerkit, tools/, demo/) finds the kit's modules through this one PYTHONPATH.
KITPATH  = PYTHONPATH="$(KIT)/scripts$${PYTHONPATH:+:$$PYTHONPATH}"
KITPY    = $(KITPATH) "$(PYTHON)" -m centerkit --invoked-from "$(CURDIR)"
TREE_ARG = --tree "$(PADDLEOCR)"
KITTOOL  = $(KITPATH) "$(PYTHON)" "$(KIT)/tools/$(1)"

.DEFAULT_GOAL := help
.PHONY: help setup export confusions check apply revert status refresh demo test inspect validate smoke bench train train-config

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: CONFIG CHECKPOINT MODEL(=Student) MODE(=eval) ENGINE(=auto) OUTPUT(=train_center.pkl) CENTERS CENTER_WEIGHT DATA(=eval) BASELINE OPTS='-o K=v' PADDLEOCR FORCE=1 NPROC(=1) PYTHON"

$(VENV)/.installed: $(KIT)/requirements.txt $(KIT)/requirements-dev.txt
	python3 -m venv "$(VENV)"
	"$(VENV)/bin/pip" install -q --upgrade pip
	"$(VENV)/bin/pip" install -q -r "$(KIT)/requirements-dev.txt"
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

check: ## dry run: does the series for this clone's release apply cleanly? (for CI pinning a tag)
	@$(KITPY) check $(TREE_ARG)

apply: ## apply the series and leave it applied (until `make revert`)
	@$(KITPY) apply $(TREE_ARG)

revert: ## restore every patched file byte-for-byte (also after a killed run)
	@$(KITPY) revert $(TREE_ARG)

status: ## release, series, and whether the patches are applied or a run is open
	@$(KITPY) status $(TREE_ARG)

refresh: ## regenerate the kit-generated patches from tools/export_center.py and tools/kit_center_loss.py
	@$(KITPY) refresh

inspect: ## print a centers pkl's report, chart its samples per class: CENTERS= [DICT= FORCE=1]
	@$(call KITTOOL,inspect_centers.py) "$(CENTERS)" --dict "$(DICT)" --force "$(FORCE)"

validate: ## check a pkl against a CenterLoss config, load it with its CenterLoss: CENTERS= CONFIG= [PADDLEOCR=]
	@$(call KITTOOL,validate_centers.py) --centers "$(CENTERS)" --config "$(CONFIG)" $(TREE_ARG)

demo: $(VENV)/.installed ## built-in default: train a tiny distillation model, export its centers, fine-tune with them
	@$(KITPATH) "$(VENV)/bin/python" "$(KIT)/demo/run_demo.py" $(TREE_ARG) --invoked-from "$(CURDIR)"

test: $(VENV)/.installed ## the test suite: every tier on every release (../shared's bundle or PADDLEOCR_REPO)
	cd "$(KIT)" && $(KITPATH) "$(VENV)/bin/python" tests/release_envs.py install && "$(VENV)/bin/python" -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

smoke: ## seconds-long real export on this clone (tiny config, stand-in checkpoint): for CI pinning a tag
	@$(call KITTOOL,smoke_export.py) $(TREE_ARG) --invoked-from "$(CURDIR)"

bench: ## speed and memory ratios, one run (README quotes them): [PADDLEOCR= BENCH_IMAGES=64 BENCH_CONFIG= BENCH_ONLY=loss,... BENCH_LOSS_CLASSES=6625,18383]
	@$(call KITTOOL,bench.py) $(TREE_ARG) --invoked-from "$(CURDIR)" \
		--images "$(BENCH_IMAGES)" --config "$(BENCH_CONFIG)" --only "$(BENCH_ONLY)" --loss-classes "$(BENCH_LOSS_CLASSES)"
