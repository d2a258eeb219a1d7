# Two commands for a fresh clone (see README): `make demo` and `make test`.
# Both build .venv from nothing on first use and are fast no-ops afterwards.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.spikeport-setup
PIP    := $(BIN)/python -m pip -q --disable-pip-version-check
LAVA   := lava-nc==0.10.0
NORSE  := norse==1.1.0
XCHECK := neurobench==2.3.0 sanafe==2.2.9
FRAMEWORKS := sinabs==3.1.3 pbr==7.1.3 rockpool==3.1.0 spikingjelly==2.0.0 loguru==0.7.3
LAVADL := lava-dl==0.6.0

.PHONY: setup demo test check lint format typecheck bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/lava.txt Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24" "setuptools>=68"
	$(PIP) install -c requirements/constraints.txt -r requirements/lava.txt -e ".[test,dask]"
	@# lava-nc's metadata says Python <3.11 and numpy <2: pip cannot waive that for one requirement,
	@# so it is installed on its own; spikeport.lava.compat makes it import on 3.11.
	$(PIP) install --no-deps --ignore-requires-python $(LAVA)
	@# norse declares torchvision, whose PyPI wheel does not import beside the CPU torch; norse never needs it.
	$(PIP) install --no-deps $(NORSE)
	@# Framework conventions (tests/test_frameworks_real.py): their NIR exporters against their own forward pass;
	@# --no-deps: sinabs needs only pbr (>= 7: 6.x imports pkg_resources from setuptools' egg_info hook and breaks
	@# every later `pip install .`), spikingjelly only loguru at import; rockpool's torch modules need nothing more.
	$(PIP) install --no-deps $(FRAMEWORKS)
	@# Cross-checks for the energy model (tests): NeuroBench's SynapticOperations and SANA-FE's Loihi 1 model.
	@# neurobench declares tonic/torchaudio, which its metrics never import; sanafe has no dependencies.
	$(PIP) install --no-deps $(XCHECK)
	@# lava-dl's netx loader (tests: spikeport's netx files against lava-dl on Lava); pins Python <3.11 like lava-nc.
	$(PIP) install --no-deps --ignore-requires-python $(LAVADL)
	@touch $(STAMP)

demo: setup
	$(BIN)/spikeport demo

test: setup check
	$(BIN)/python -m pytest

check: lint typecheck

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The type checker reads a regular (non-editable) install: mypy cannot follow setuptools' editable finder.
typecheck: setup
	@rm -rf .typecheck && $(PIP) install --no-deps --no-build-isolation --target .typecheck .
	MYPYPATH=.typecheck $(BIN)/mypy -p spikeport

bench: setup
	$(BIN)/python benchmarks/emulator_vs_lava.py

clean:
	rm -rf $(VENV) .typecheck build dist *.egg-info
