# `make demo`: set up .venv and stylise the bundled example; `make test`: set up and run the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The browser tests of `impasto serve` drive Debian's Chromium (pip's playwright cannot download one
# here); installed with apt-get when missing, as root or through sudo.
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)
# The Winograd tile transforms, the fast networks' kernels and the flow's reliability are C
# (src/impasto/net/_winograd.c, fast/_transform.c, image/_flow.c, all three with src/impasto/_kernels.h;
# declared in setup.py), built by pip with the package: a C compiler and Python's headers, installed
# with apt-get when missing.
PYINC    := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_paths()['include'])")
BUILD_TOOLS := $(VENV)/.build-tools

.PHONY: demo test bench clean

$(BUILD_TOOLS):
	@if ! command -v cc >/dev/null 2>&1 || [ ! -f "$(PYINC)/Python.h" ]; then \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends gcc libc6-dev python3-dev; fi
	mkdir -p $(VENV) && touch $(BUILD_TOOLS)

$(STAMP): pyproject.toml setup.py $(wildcard src/impasto/_*.h src/impasto/*/_*.c) | $(BUILD_TOOLS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

demo: $(STAMP)
	mkdir -p out
	$(VENV)/bin/impasto transfer examples/tubingen.jpg examples/starry_night.jpg -o out/demo.png

test: $(STAMP) $(CHROMIUM)
	IMPASTO_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks.transfer

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info
