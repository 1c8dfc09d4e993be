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

.PHONY: demo test test-slow install clean zoo evaluators report

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

# The demo writes its morph as MP4 too when imageio-ffmpeg (the `video` extra: a 68 MB wheel, 173 MB installed, so
# not a default dependency) is there; the demo installs it once, and without it writes GIFs only.
$(VENV)/.video-checked: $(STAMP)
	@$(BIN)/python -m pip install -q imageio-ffmpeg \
	  || echo "note: imageio-ffmpeg could not be installed; the demo writes its morph as GIF only"
	touch $@

demo: $(STAMP) $(VENV)/.video-checked
	$(BIN)/python -m alignjax.cli.demo --workdir runs/demo

test: $(STAMP) $(VENV)/.torch-checked
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -rs -n 2 --durations=10

test-slow: $(STAMP) $(VENV)/.torch-checked
	$(BIN)/python -m pytest -q -m slow

# The benchmark's rulers and models (issue 9). Each step is resumable: re-running continues where it stopped.
# evaluators: ~19 min per domain on 2 shared CPU cores; zoo: parent 25 kimg, fine-tunes of 4 kimg (buildings 40).
evaluators: $(STAMP)
	for d in faces toons animals buildings; do \
	  $(BIN)/python -m alignjax.cli.eval_train --domain $$d --res 32 --out assets/evaluators/$${d}_32 || exit 1; done

ZOO_MODELS := parent toons animals buildings animals_faces
zoo: $(STAMP)
	for n in $(ZOO_MODELS); do \
	  $(BIN)/python -m alignjax.cli.train --config zoo_$$n --workdir runs/zoo/$$n || exit 1; \
	  $(BIN)/python -m alignjax.cli.zoo install $$n --workdir runs/zoo/$$n || exit 1; done
	$(BIN)/python -m alignjax.cli.zoo cards
	$(BIN)/python -m alignjax.cli.zoo sheet

# StyleAlign's analyses on the zoo (issue 11): docs/report/ (report.md, report.html, results.json, figures).
# ~32 min on 2 shared CPU cores; `--fast` for a ~1.5 min check.
report: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m alignjax.cli.report --out docs/report

clean:
	rm -rf $(VENV) runs .pytest_cache
