# `make demo`: set up .venv and stylise the bundled example; `make test`: set up and run the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The browser tests of `impasto serve` drive Debian's Chromium (pip's playwright cannot download one
# here); installed with apt-get when missing, as root or through sudo.
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
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
	$(PY) benchmarks/transfer.py

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info
