"""`make demo-real`: GRPO against Poly-EPO from SmolLM2-135M-Instruct, then a report.

  python -m explore_rl.demo_real --workdir runs/demo-real [--task KEY] [--seed 0]
                                 [--init_from MODEL] [--scale demo]

Both methods train from the pretrained model itself (no SFT) on the first training task
the base model's map chose (results/base_model; explore_rl/real_model.py's fallback
before the map has chosen one), at `real_model.SCALES["demo"]`: 6 steps of 8 prompts x 8
samples x 128 new tokens, full fine-tuning with bf16 matmul inputs, lr 2e-5, GRPO at
Poly-EPO's loss aggregation and clip range (`SHARED_LOSS`), with a progress bar. Writes
runs/demo-real/{grpo,polyepo}/ and runs/demo-real/report.md: the table (pass@1, pass@k,
distinct strategies, entropy, wall time), the untrained model on the same held-out
problems, the reward / entropy / pass@k plots, and three sampled responses per method
(the base model's too) for the same held-out prompt. Re-running reuses finished runs.
Wall time: README.md, "A real model".
"""
from __future__ import annotations

import argparse
import os
import time

from explore_rl import compile_cache
from explore_rl import real_model as rm
from explore_rl import summaries
from explore_rl.eval import base_map
from explore_rl.eval.report import write_report

METHODS = {"grpo": "GRPO", "polyepo": "Poly-EPO"}
# The objective keys of the jitted update (the loss and its aggregation): GRPO takes Poly-EPO's
# (Dr. GRPO's constant normaliser, clip-higher 0.28), so the two runs differ only in their
# advantages and share every compiled update (experiments/polyepo.py: this aggregation and
# clip alone change neither GRPO's update norm nor its strategies).
SHARED_LOSS = ("loss", "loss_kwargs", "aggregation", "aggregation_kwargs")
NUM_SHOWN = 3


def samples_section(policies: dict, config, *, seed: int) -> list[str]:
  """Markdown: NUM_SHOWN responses of each policy to held-out problem 0 (same key)."""
  import jax
  from explore_rl.eval.evaluate import held_out_problems
  from explore_rl.sampling.processors import SamplingConfig
  from explore_rl.sampling.rollout import sample_and_score
  from explore_rl.sampling.samplers import IndependentSampler, Policies
  from explore_rl.tasks import get_task
  task = get_task(config.task, **config.task_kwargs.to_dict())
  problem = held_out_problems(task, seed=seed, num_prompts=1, difficulty=config.difficulty)
  sampler = IndependentSampler(sampling=SamplingConfig(temperature=config.eval.temperature,
                                                       max_new_tokens=config.max_response_len),
                               prompt_len=config.max_prompt_len)
  lines = ["## Three samples per method, same prompt", ""]
  for label, policy in policies.items():
    out = sample_and_score(sampler, Policies(policy), task, problem, num_samples=NUM_SHOWN,
                           rng=jax.random.key(seed))
    if label == next(iter(policies)):
      lines += ["Prompt (the user message):", "", "```", out.problems[0].prompt, "```", ""]
    lines += [f"### {label}", ""]
    for j, (text, status) in enumerate(zip(out.responses, out.statuses)):
      lines += [f"{j + 1}. ({status}, reward {out.rewards[0, j]:.0f})", "", "```",
                text.strip(), "```", ""]
  return lines


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default="runs/demo-real")
  parser.add_argument("--task", default=None, help="a base-map task key (default: the "
                      "map's first chosen task)")
  parser.add_argument("--base_map", default=os.path.join("results", "base_model"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--init_from", default=rm.MODEL)
  parser.add_argument("--scale", default="demo", choices=sorted(rm.SCALES))
  parser.add_argument("--compile_cache", default=None)
  args = parser.parse_args(argv)
  compile_cache.enable(args.compile_cache)
  from explore_rl import harness as ex
  from explore_rl.training.policy_loader import load_initial_policy, load_policy
  from explore_rl.training.rl import train_rl
  t_start = time.perf_counter()
  spec = base_map.get_spec(args.task or rm.chosen_tasks(args.base_map)[0])
  base = load_initial_policy(args.init_from)
  prompt_len = rm.task_prompt_len(base, spec, seed=args.seed)
  configs = {arm: rm.arm_config(arm, spec, seed=args.seed, scale=args.scale,
                                prompt_len=prompt_len, init_from=args.init_from)
             for arm in METHODS}
  for key in SHARED_LOSS:   # GRPO at Poly-EPO's loss: one compiled update serves both
    configs["grpo"].objective[key] = configs["polyepo"].objective[key]
  wall, runs = {}, {}
  for arm, label in METHODS.items():
    config = configs[arm]
    runs[label] = os.path.join(args.workdir, arm)
    t0 = time.perf_counter()
    if not ex.finished(runs[label], config.total_steps):
      train_rl(config, runs[label])
    wall[label] = time.perf_counter() - t0
  base = rm.base_policy(config, base)   # as the runs compute (their model_overrides)
  ev = ex.held_out_eval(base, config.to_dict(), num_prompts=config.eval.num_prompts,
                        num_samples=config.eval.num_samples, chunk=4)
  intro = (f"{args.init_from}, task `{spec.key}` ({spec.task} {dict(spec.task_kwargs)}, "
           f"difficulty {spec.difficulty}), its chat template; {config.total_steps} steps of "
           f"{config.rollout.prompts_per_step} prompts x {config.rollout.num_samples} samples "
           f"x {config.max_response_len} new tokens, full fine-tuning (matmul inputs "
           f"{config.model_overrides.get('matmul_dtype') or 'fp32'}), lr "
           f"{config.optim.learning_rate:g}, seed {args.seed}; GRPO at Poly-EPO's loss "
           f"aggregation and clip range, so only the advantages differ; "
           f"{summaries.machine()}. "
           f"Held-out: {config.eval.num_prompts} prompts x {config.eval.num_samples} samples at "
           f"temperature {config.eval.temperature}. The untrained model on the same problems: "
           f"pass@1 {ev['pass@1']:.3f} ± {ev['pass@1_stderr']:.3f}, "
           f"pass@{config.eval.num_samples} {ev[f'pass@{config.eval.num_samples}']:.3f}, "
           f"distinct strategies {ev['distinct_strategies']:.2f}, entropy "
           f"{ev['eval_entropy']:.3f}." + ("" if rm.counts_strategies(spec.task) else
           " On this task a reply's signature is its final answer, one correct per problem: "
           "distinct strategies count spellings of that answer, not strategies."))
  path = write_report(args.workdir, runs, wall=wall, intro=intro)
  policies = {"base model": base, **{label: load_policy(d) for label, d in runs.items()}}
  section = samples_section(policies, config, seed=args.seed)
  total = time.perf_counter() - t_start
  with open(path, "a") as f:
    f.write("\n".join(["", *section, f"Total wall time {total:.0f} s.", ""]))
  print(open(path).read())


if __name__ == "__main__":
  main()
