# ai-quant build. `make run` and `make test` are the two quick-start commands; both build
# everything they need first and are incremental (stamps under .build/).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMPS := .build
CARGO  ?= cargo

RUST_SRC := Cargo.toml $(shell find kernel ws_sidecar -name '*.rs' -o -name Cargo.toml 2>/dev/null)
PY_SRC   := $(shell find engine strategy exchange live daemon monitor tools tests -name '*.py' 2>/dev/null)

.PHONY: help venv build ext bins test test-rust test-py run lint fmt bench clean

help:
	@echo "make run    build everything, then run the main job (see README)"
	@echo "make test   build everything, then run every Rust and Python test"
	@echo "make lint   cargo fmt/clippy, ruff, mypy"
	@echo "make bench  kernel, exchange and backtester benchmarks (prints numbers)"

$(STAMPS):
	@mkdir -p $(STAMPS)

# Virtualenv with every Python dependency named in pyproject.toml (runtime + dev).
$(STAMPS)/venv: pyproject.toml | $(STAMPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) tools/dev/requirements.py > $(STAMPS)/requirements.txt
	$(PIP) install -q -r $(STAMPS)/requirements.txt
	# The repository root is importable from the venv (engine, strategy, exchange, ...).
	$(PY) -c "import site,os; open(os.path.join(site.getsitepackages()[0],'ai_quant_repo.pth'),'w').write(os.getcwd()+'\n')"
	touch $@

venv: $(STAMPS)/venv

# The PyO3 extension bt_runtime, installed into the venv.
$(STAMPS)/ext: $(STAMPS)/venv $(RUST_SRC) pyproject.toml
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --quiet 2>&1 | { grep -v -e '^Requirement already satisfied' -e '^Ignoring ' -e '^Looking in links' || true; }
	touch $@

ext: $(STAMPS)/ext

# Rust binaries (backtester CLI, WS sidecar) once their crates exist.
$(STAMPS)/bins: $(RUST_SRC) | $(STAMPS)
	$(CARGO) build --release --workspace --bins
	touch $@

bins: $(STAMPS)/bins

build: ext bins

test-rust: build
	$(CARGO) test --workspace --release

# Two workers by default (the suites are independent: own temp dirs, free ports); each test file
# stays on one worker so its module fixtures (a local exchange, a sidecar) start once.
PYTEST_WORKERS ?= 2
test-py: build
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: test-rust test-py

lint: build
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy engine strategy exchange live daemon monitor tools

fmt:
	$(CARGO) fmt --all
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: build
	$(PY) tools/bench.py
	$(PY) tools/bench_backtest.py

run: build
	$(PY) tools/run_main.py

clean:
	rm -rf $(STAMPS) target
