"""Ablation driver: train several method configs from one SFT prior, write a table + plots.

  python experiments/compare_methods.py --sft runs/demo/sft --out runs/compare \
      --methods grpo,dr_grpo,dapo,clip_cov,kl_cov,polyepo,pkpo,passk_analytic [--steps 60]
  python experiments/compare_methods.py --quick --out /tmp/compare     # smoke mode (suite)

Each method runs `configs/<method>.py` with `init_from=--sft` in OUT/<method>
(resuming if it exists); OUT/report.md holds pass@1, pass@8, distinct successful
strategies, entropy and wall time per method, with reward / entropy / pass@k plots.
Runtime on 2 CPU cores: ~3 minutes per method at the default 60 steps. One seed: the
multi-seed comparisons with confidence intervals are the other scripts in experiments/.
`--quick` trains the shared quick prior (`explore_rl.harness.sft_prior(quick=True)`,
tiny preset) when `--sft` is not given and runs each method's `:tiny` config for 2 steps.
"""
import argparse
import os
import time

from explore_rl.config_files import load_config
from explore_rl.eval.report import write_report
from explore_rl.training.rl import train_rl


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sft", default=None, help="an SFT workdir (configs/sft.py)")
  parser.add_argument("--out", default="runs/compare")
  parser.add_argument("--methods", default="grpo,polyepo,pkpo,kl_cov")
  parser.add_argument("--steps", type=int, default=None, help="override total_steps")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--quick", action="store_true", help="smoke mode: tiny configs, 2 steps")
  args = parser.parse_args(argv)
  sft = args.sft
  if sft is None:
    if not args.quick:
      parser.error("--sft is required (or --quick, which trains a tiny prior)")
    from explore_rl.harness import sft_prior
    sft = sft_prior("partition", quick=True)
  methods = args.methods.split(",")
  variant = ":tiny" if args.quick else ""
  steps = args.steps or (2 if args.quick else None)
  configs = {m: load_config(m + variant, {"init_from": sft, "seed": args.seed}) for m in methods}
  wall = {}
  for name, config in configs.items():
    if steps:
      config.total_steps = steps
      config.eval_every = config.checkpoint_every = steps
    t0 = time.perf_counter()
    train_rl(config, os.path.join(args.out, name), progress=not args.quick)
    wall[name] = time.perf_counter() - t0
  runs = {"SFT prior": sft, **{m: os.path.join(args.out, m) for m in methods}}
  intro = (f"Methods {', '.join(methods)} from the SFT prior {sft} "
           f"(seed {args.seed}); held-out metrics as in the configs' eval block.")
  print(open(write_report(args.out, runs, wall=wall, intro=intro)).read())


if __name__ == "__main__":
  main()
