# Two entry points (README.md): `make demo` runs the main job, `make test` the tests.
# Both create .venv on first use and are idempotent.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

# The fused CBOW op is compiled against the installed wheel at set-up (pure-TF fallback).
$(STAMP): pyproject.toml tfrs_emb/models/cbow_kernel.cc
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	$(PY) -m trainers.build_cbow_kernel
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m trainers.jader_w2v --flagfile=configs/jader_w2v.flags

test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) runs .cache tfrs_emb/models/_cbow_kernel.so
