"""Ablation driver: train several method configs from one SFT prior, write a table + plots.

  python experiments/compare_methods.py --sft runs/demo/sft --out runs/compare \
      --methods grpo,dr_grpo,dapo,clip_cov,kl_cov,polyepo,pkpo,passk_analytic [--steps 60]

Each method runs `configs/<method>.py` with `init_from=--sft` in OUT/<method>
(resuming if it exists); OUT/report.md holds pass@1, pass@8, distinct successful
strategies, entropy and wall time per method, with reward / entropy / pass@k plots.
Runtime on 2 CPU cores: ~3 minutes per method at the default 60 steps.
"""
import argparse
import os
import time

from explore_rl.config_files import load_config
from explore_rl.eval.report import write_report
from explore_rl.training.rl import train_rl


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sft", required=True, help="an SFT workdir (configs/sft.py)")
  parser.add_argument("--out", default="runs/compare")
  parser.add_argument("--methods", default="grpo,polyepo,pkpo,kl_cov")
  parser.add_argument("--steps", type=int, default=None, help="override total_steps")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  methods = args.methods.split(",")
  configs = {m: load_config(m, {"init_from": args.sft, "seed": args.seed}) for m in methods}
  wall = {}
  for name, config in configs.items():
    if args.steps:
      config.total_steps = args.steps
      config.eval_every = config.checkpoint_every = args.steps
    t0 = time.perf_counter()
    train_rl(config, os.path.join(args.out, name))
    wall[name] = time.perf_counter() - t0
  runs = {"SFT prior": args.sft, **{m: os.path.join(args.out, m) for m in methods}}
  intro = (f"Methods {', '.join(methods)} from the SFT prior {args.sft} "
           f"(seed {args.seed}); held-out metrics as in the configs' eval block.")
  print(open(write_report(args.out, runs, wall=wall, intro=intro)).read())


if __name__ == "__main__":
  main()
