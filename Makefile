# Two commands for a fresh machine (see README):  `make demo`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
FERV := $(VENV)/bin/ferv
ORT_GPU := onnxruntime-gpu==1.31.1

.PHONY: install assets demo test lint browser

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# insightface depends on the CPU 'onnxruntime'; both wheels ship the same module, so keep exactly one:
	# the GPU build, which also runs on the CPU where no CUDA is present.
	$(PY) -m pip uninstall -q -y onnxruntime
	$(PY) -m pip install -q --force-reinstall --no-deps $(ORT_GPU)
	touch $@

install: $(VENV)/.installed

assets: install
	$(FERV) assets fetch

demo: assets
	$(FERV) demo

# The labelling page's tests drive Debian's Chromium headless (Playwright, executable_path).
browser:
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
		else sudo apt-get update && sudo apt-get install -y chromium; fi; }

test: assets browser
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
