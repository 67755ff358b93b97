"""explore_rl: exploration in RL post-training of language models (JAX/Flax).

Pinned, tested versions live in requirements.lock; `make test` / `make demo`
install with `-c requirements.lock` so a fresh machine gets exactly those.
"""
from setuptools import find_packages, setup

setup(
    name="explore_rl",
    version="0.1.0",
    description="Exploration in RL post-training of language models: set RL, "
    "entropy control, self-distillation, two-policy training, in JAX/Flax.",
    packages=find_packages(include=["explore_rl", "explore_rl.*"]),
    python_requires=">=3.11",
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax",
        "orbax-checkpoint",
        "chex",
        "ml-collections",
        "numpy",
        "tensorboardX",
        "tqdm",
        "tokenizers",
        "safetensors",
        "jinja2>=3.1.6",  # checkpoints' chat templates (hf_import), sandboxed as transformers
        "matplotlib",
        "filelock",  # JAX takes its compilation-cache lock with it (explore_rl/compile_cache.py)
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "hypothesis", "scipy"],
        # TFDS builders read without TensorFlow through ArrayRecord + grain.
        # TFDS 4.9.10 needs the importlib_resources backport to locate builders
        # defined in an installed package, but does not declare it.
        "tfds": ["tensorflow-datasets", "grain", "array-record", "importlib_resources"],
        # Parity tests and side-by-side benchmarks against transformers/TRL
        # (TRL's GRPOTrainer takes a `datasets.Dataset`; peft: its LoRA arm).
        # torch==2.13.0 is the CPU wheel; a plain `torch` pulls a CUDA build.
        "hf": ["torch==2.13.0", "transformers", "trl", "datasets", "peft"],
        "notebooks": ["nbclient", "ipykernel", "jupytext", "nbformat"],
        # llama.cpp's GGUF reader and dequantiser (pure Python + NumPy): GGUF files and
        # the packaged models (explore_rl/models/gguf_import.py, model_names.py).
        "gguf": ["gguf"],
        # Worlds from the ecosystem: reasoning-gym's procedural datasets and math-verify's
        # answer checker. Both evaluate parts of model output, so the task families score
        # through the sandboxed pool (explore_rl/sandbox).
        "worlds": ["reasoning-gym==0.1.25", "math-verify==0.9.0"],
    },
    entry_points={"console_scripts": ["explore-rl=explore_rl.cli:run"]},
)
