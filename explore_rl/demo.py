"""`make demo`: SFT warm start, then GRPO and Poly-EPO from it, then a report.

  python -m explore_rl.demo --workdir runs/demo [--preset small]

Writes runs/demo/{sft,grpo,polyepo}/ (metrics.jsonl, TensorBoard, checkpoints)
and runs/demo/report.md with a table (pass@1, pass@8, distinct successful
strategies, final entropy, wall time) and PNG plots (reward, entropy, pass@k).
Re-running resumes each finished or interrupted run from its checkpoints.
"""
from __future__ import annotations

import argparse
import os
import time

from explore_rl import compile_cache
from explore_rl.config_files import load_config
from explore_rl.eval.report import write_report

METHODS = {"grpo": "GRPO", "polyepo": "Poly-EPO (polychromatic set RL)"}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default="runs/demo")
  parser.add_argument("--preset", default="small")
  parser.add_argument("--smoke", action="store_true",
                      help="the tiny variants of every config (a test of the pipeline)")
  parser.add_argument("--compile_cache", default=None,
                      help="XLA's persistent compilation cache directory (default: "
                      "~/.cache/explore_rl/jax, see explore_rl/compile_cache.py); 'off' turns "
                      "it off")
  args = parser.parse_args(argv)
  compile_cache.enable(args.compile_cache)
  variant = ":tiny" if args.smoke else ""
  from explore_rl.training.rl import train_rl
  from explore_rl.training.sft import train_sft
  sft_dir = os.path.join(args.workdir, "sft")
  wall = {}
  t0 = time.perf_counter()
  overrides = {} if args.smoke else {"model.preset": args.preset}
  train_sft(load_config("sft" + variant, overrides), sft_dir)
  wall["SFT prior"] = time.perf_counter() - t0
  for name, label in METHODS.items():
    t0 = time.perf_counter()
    train_rl(load_config(name + variant, {"init_from": sft_dir}),
             os.path.join(args.workdir, name))
    wall[label] = time.perf_counter() - t0
  sft = load_config("sft" + variant, overrides)
  intro = (f"Task `{sft.task}` (difficulty {sft.difficulty}), preset `{sft.model.preset}`, CPU. "
           f"Held-out: {sft.eval.num_prompts} prompts x {sft.eval.num_samples} samples at "
           "temperature 1; `distinct` counts distinct correct strategies per prompt; entropy is "
           "the mean per-token policy entropy of those samples. RL runs start from the SFT prior.")
  runs = {"SFT prior": sft_dir, **{label: os.path.join(args.workdir, name)
                                   for name, label in METHODS.items()}}
  path = write_report(args.workdir, runs, wall=wall, intro=intro)
  print(open(path).read())


if __name__ == "__main__":
  main()
