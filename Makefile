# Set-up and main jobs over a local virtual environment (.venv), pinned by constraints.txt.
#   make run     installs what is missing, then runs the main job (override PHOTO, MOTION, ORBIT, OUT)
#   make test    installs what is missing, then runs the test suite
#   make lint    installs what is missing, then ruff (lint + format check) and mypy, as configured in pyproject.toml
#   make constraints  regenerates constraints.txt (every package pinned) with uv; see that file's header
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data
PHOTO  ?= $(DATA)/photo_woman_street.jpg
MOTION ?= $(DATA)/dance_red_skirt.mp4
ORBIT  ?= 360
OUT    ?= out.mp4

.PHONY: install run test lint bench constraints clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 4; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,lint,lora]'
	touch $@

run: install
	$(BIN)/hvg animate $(PHOTO) --motion $(MOTION) --orbit $(ORBIT) -o $(OUT)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# The full pin set for CI and this set-up: every package of the test, lint and lora extras, resolved for
# CPython 3.11 on x86-64 Linux against the CPU torch wheel (no CUDA packages). constraints.in holds the hand pins.
UV ?= uv
WHEELS ?= /opt/wheels
COMPILE := pip compile pyproject.toml --extra test --extra lint --extra lora --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --find-links $(WHEELS) -c constraints.in -o constraints.txt
constraints: pyproject.toml constraints.in
	$(UV) $(COMPILE) --custom-compile-command 'make constraints, which runs: uv $(COMPILE)'

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
