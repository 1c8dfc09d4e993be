# Two commands do everything on a machine with only Python >= 3.11:
#   make demo   - installs into .venv, then runs the main job on its embedded defaults (no downloads)
#   make test   - installs into .venv (with test extras), then runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.alignjax-installed
# PyTorch is never a runtime dependency; the tests use it (when installable) to check that our exports load
# in torch. Set TORCH= to skip it.
TORCH  ?= torch==2.13.0

.PHONY: demo test test-slow install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

$(VENV)/.torch-checked: $(STAMP)
	@if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install -q "$(TORCH)" \
	  || echo "note: $(TORCH) could not be installed; torch-based checks will be skipped"; fi
	touch $@

demo: $(STAMP)
	$(BIN)/python train.py --config configs/demo.py --workdir runs/demo

test: $(STAMP) $(VENV)/.torch-checked
	$(BIN)/python -m pytest -q -n 2 --durations=10

test-slow: $(STAMP) $(VENV)/.torch-checked
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache
