# Two commands do everything: `make figures` (the main job) and `make test`.
# Both create .venv on first use; nothing else needs installing beyond Python 3.11 and pip.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned here only for the fresh environment; the package itself accepts torch>=2.4.
# Override for another build, e.g. `make test TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu'`.
TORCH  ?= torch==2.13.0

# Tests and CI read Tiny Shakespeare from the shared folder when it exists (no network in tests).
ifneq ($(wildcard ../shared/data),)
export TNN_DATA_DIR ?= $(abspath ../shared/data)
endif
export TNN_FIGURES_DIR := $(CURDIR)/figures
export PYTHONHASHSEED := 0

NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: test figures lab bench clean-venv

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

## make test: the layers and the lint, pytest on tests/, then nbval re-executes every notebook in quick mode.
test: $(VENV)/.installed
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/python -m pytest tests/ -q
	TNN_QUICK=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:randomly -q notebooks/

## make figures: execute every notebook in order, in place, in full mode; rewrites figures/.
figures: $(VENV)/.installed
	mkdir -p figures
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  TNN_QUICK=0 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	done

## make lab: JupyterLab on notebooks/.
lab: $(VENV)/.installed
	$(BIN)/jupyter lab notebooks/

## make bench: the Toeplitz and layer benchmarks, printed as tables.
bench: $(VENV)/.installed
	$(BIN)/python -m tnn_ref.bench all

clean-venv:
	rm -rf $(VENV)
