# Set-up and main jobs over a local virtual environment (.venv), pinned by constraints.txt.
#   make run     installs what is missing, then runs the main job (override PHOTO, MOTION, ORBIT, OUT)
#   make test    installs what is missing, then runs the test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data
PHOTO  ?= $(DATA)/photo_woman_street.jpg
MOTION ?= $(DATA)/dance_red_skirt.mp4
ORBIT  ?= 360
OUT    ?= out.mp4

.PHONY: install run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 4; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

run: install
	$(BIN)/hvg animate $(PHOTO) --motion $(MOTION) --orbit $(ORBIT) -o $(OUT)

test: install
	$(BIN)/python -m pytest

bench: install
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
