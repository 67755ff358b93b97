"""Offline preference data from a fixed policy: an SFT prior's samples, scored by the verifier.

  make preference-data       # runs/demo/sft -> runs/preference/partition.jsonl (+ TFDS form)
  python -m explore_rl.training.preference_data --prior runs/demo/sft \
      --out runs/preference/partition.jsonl [--tfds_dir runs/preference/tfds] \
      [--num_prompts 512] [--num_samples 8] [--pairs_per_prompt 2] [--seed 0]

The prior's own task family, difficulty and lengths (its config.json) give `num_prompts`
problems from a stream of their own (seed `PAIRS_SEED_OFFSET + seed`, disjoint from the
training streams and the held-out set); the prior samples `num_samples` responses to each
at `temperature`, the verifier scores them, and each prompt gives up to
`pairs_per_prompt` (correct, incorrect) pairs, no response used twice
(`preference_trainer.build_pairs`); prompts whose samples are all correct or all wrong
give none. Deterministic given the seed (and the machine's device count). The pairs are
written as JSONL (`tasks/preference_pairs.py`) and, with `tfds_dir`, as the TFDS dataset
`explore_rl_preference_pairs/<task>` (ArrayRecord). DPO and HyPO train on them offline
(configs/dpo.py, configs/hypo.py; docs/algorithms.md, "Preference optimisation").
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import numpy as np

from explore_rl.errors import UserError
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import sample_and_score
from explore_rl.sampling.samplers import IndependentSampler, Policies
from explore_rl.tasks import get_task, sample_problems
from explore_rl.tasks.preference_pairs import PreferencePair, write_pairs
from explore_rl.training.policy_loader import load_policy
from explore_rl.training.preference_trainer import build_pairs

PAIRS_SEED_OFFSET = 5_555_555
CHUNK = 64   # prompts per sampler call


def sample_pairs(policy, task, problems, *, num_samples: int, pairs_per_prompt: int,
                 seed: int, sampling: SamplingConfig, prompt_len: int
                 ) -> tuple[list[PreferencePair], dict]:
  """(pairs, stats) from `num_samples` samples of `policy` on each problem; stats: the
  samples' pass@1 and how many prompts gave a pair."""
  sampler = IndependentSampler(sampling=sampling, prompt_len=prompt_len)
  rng = jax.random.key(seed)
  pairs, correct, paired = [], [], 0
  for start in range(0, len(problems), CHUNK):
    rng, key = jax.random.split(rng)
    part = sample_and_score(sampler, Policies(policy), task, problems[start:start + CHUNK],
                            num_samples=num_samples, rng=key)
    chosen, rejected, valid = build_pairs(part.correct, pairs_per_prompt,
                                          np.random.default_rng([seed, start]))
    pairs += [PreferencePair(part.problems[c // num_samples].prompt, part.responses[c],
                             part.responses[r]) for c, r in zip(chosen[valid], rejected[valid])]
    correct.append(part.correct)
    paired += int(valid.reshape(len(part.problems), -1).any(axis=1).sum())
  return pairs, {"pass@1": float(np.concatenate(correct).mean()), "prompts": len(problems),
                 "prompts_with_pairs": paired, "pairs": len(pairs)}


def make_preference_data(prior: str, out: str, *, num_prompts: int = 512,
                         num_samples: int = 8, pairs_per_prompt: int = 2, seed: int = 0,
                         temperature: float = 1.0, tfds_dir: str | None = None) -> dict:
  """Writes the prior's pairs to `out` (JSONL) and, with `tfds_dir`, builds the TFDS form
  there; returns the stats (`sample_pairs`) and `tfds_path`, the directory `load_pairs`
  reads."""
  if not os.path.exists(os.path.join(prior, "config.json")):
    raise UserError(f"{prior!r} is not a run directory (no config.json): train the prior "
                    "first (make demo, or explore-rl train --config configs/sft.py)")
  with open(os.path.join(prior, "config.json")) as f:
    run = json.load(f)
  task = get_task(run["task"], **run.get("task_kwargs", {}))
  problems = sample_problems(task, PAIRS_SEED_OFFSET + seed, num_prompts, run["difficulty"])
  pairs, stats = sample_pairs(
      load_policy(prior), task, problems, num_samples=num_samples,
      pairs_per_prompt=pairs_per_prompt, seed=seed, prompt_len=run["max_prompt_len"],
      sampling=SamplingConfig(temperature=temperature, max_new_tokens=run["max_response_len"]))
  write_pairs(out, pairs)
  if tfds_dir:
    from explore_rl.tasks.tfds_builders import PairsConfig, PreferencePairsBuilder
    builder = PreferencePairsBuilder(data_dir=tfds_dir, file_format="array_record",
                                     config=PairsConfig(name=run["task"], path=out))
    builder.download_and_prepare()
    stats["tfds_path"] = str(builder.data_dir)
  return stats


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--prior", required=True, help="an SFT run directory (configs/sft.py)")
  parser.add_argument("--out", required=True, help="the JSONL file to write")
  parser.add_argument("--tfds_dir", default=None, help="also build the TFDS form here")
  parser.add_argument("--num_prompts", type=int, default=512)
  parser.add_argument("--num_samples", type=int, default=8)
  parser.add_argument("--pairs_per_prompt", type=int, default=2)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--temperature", type=float, default=1.0)
  args = parser.parse_args(argv)
  try:
    stats = make_preference_data(args.prior, args.out, num_prompts=args.num_prompts,
                                 num_samples=args.num_samples,
                                 pairs_per_prompt=args.pairs_per_prompt, seed=args.seed,
                                 temperature=args.temperature, tfds_dir=args.tfds_dir)
  except UserError as e:       # one line, as the CLI's (a missing or unfinished prior)
    parser.error(str(e))
  print(f"wrote {stats['pairs']} pairs from {stats['prompts_with_pairs']} of "
        f"{stats['prompts']} prompts (the prior's pass@1 {stats['pass@1']:.3f}) to {args.out}"
        + (f"; TFDS: {stats['tfds_path']}" if "tfds_path" in stats else ""))
  return 0


if __name__ == "__main__":
  sys.exit(main())
