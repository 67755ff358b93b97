"""One RL step of the `grpo` config, phase by phase, side by side with TRL's GRPOTrainer.

Runs `RLTrainer`'s phases (sample, score, update) on a freshly initialised
preset (default `small`: 16 prompts x 8 samples, prompt 20 + response 28
tokens, two optimizer updates of 64 rows per step) and prints per phase the
best time over the timed steps (compilation excluded by warm-up steps), the
tokens/s, the peak memory, and the update's achieved FLOP/s as a fraction of
the measured f32 matmul peak:

  update FLOPs = 6 * params * rows * (P + M) * epochs

counting every processed token, padding included (attention FLOPs left out,
the usual approximation). The update is timed twice: as the trainer's phase
(host batching + device transfer + `rl_update`) and as `rl_update` alone.

With the `hf` extra (torch, transformers, trl, datasets) it then runs TRL's
`GRPOTrainer` in the same process on a randomly initialised `LlamaForCausalLM`
of the same shape, on the same prompts and reward (the task's verifier), with
the same group size, lengths, mini-batches, clip and loss aggregation, and
prints the ratio of RL-step throughputs.

Targets (issue 6): at least 3x TRL's RL-step throughput on CPU; the update at
>= 50% of the measured matmul peak for the `small` preset.

  python benchmarks/rl_step.py                 # small, 3 timed steps, TRL (~1-3 min on 2 cores)
  python benchmarks/rl_step.py --quick         # tiny, 1 timed step
  python benchmarks/rl_step.py --profile       # + the update's most expensive XLA ops
  python benchmarks/rl_step.py --no-trl
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import tempfile
import time
import warnings

import jax
import numpy as np

import _common
from explore_rl.config_files import load_config
from explore_rl.models import sharding
from explore_rl.tasks import sample_problems
from explore_rl.training.rl import RLBatch, RLTrainer, rl_update


class JaxRL:
  """An `RLTrainer` stepped phase by phase, as `RLTrainer.run` does (no eval, no checkpoint)."""

  def __init__(self, config, workdir: str):
    self.trainer = RLTrainer(config, workdir, progress=False)
    self.config = config
    self.base = jax.random.key(config.seed)

  def step(self, step: int) -> dict:
    t = self.trainer
    k_sample, k_adv, k_update = jax.random.split(jax.random.fold_in(self.base, step), 3)
    t0 = time.perf_counter()
    scored, _ = t._rollout(step, k_sample)    # the host copy: already synchronised
    t1 = time.perf_counter()
    _, adv, _ = t._advantages(scored, k_adv)
    t2 = time.perf_counter()
    t._update(scored, adv, step, k_update)    # ends in device_get of the metrics
    t3 = time.perf_counter()
    self.last = scored, adv
    mask = scored.host.mask
    return {"sample": t1 - t0, "score": t2 - t1, "update": t3 - t2, "step": t3 - t0,
            "response_tokens": int(mask.sum()),
            "sample_tokens": int(mask.sum() + scored.host.prompt_valid.sum()
                                 * scored.num_samples)}

  def processed_tokens(self) -> int:
    """Tokens the update's forward/backward passes run over, padding included."""
    c = self.config
    rows = c.rollout.prompts_per_step * c.rollout.num_samples
    return rows * (c.max_prompt_len + c.max_response_len) * c.learner.epochs

  def minibatch(self) -> RLBatch:
    """The first mini-batch of the last step, as `_update` builds it (on the mesh)."""
    scored, adv = self.last
    n, t, ro = scored.num_samples, self.trainer, scored.host
    take = np.arange(ro.tokens.shape[0] // self.config.learner.mini_batches)
    full = dict(prompt_tokens=np.repeat(ro.prompt_tokens, n, 0)[take],
                prompt_valid=np.repeat(ro.prompt_valid, n, 0)[take],
                response_tokens=ro.tokens[take], response_mask=ro.mask[take],
                old_logprobs=ro.policy_logprobs[take],
                behaviour_logprobs=ro.behaviour_logprobs[take], advantages=adv.reshape(-1)[take])
    return RLBatch(**{k: jax.device_put(v, sharding.batch_sharding(t.mesh, v.ndim))
                      for k, v in full.items()})

  def update_call(self):
    """A closure running one `rl_update` on a fixed mini-batch (the state is donated and kept)."""
    t, c = self.trainer, self.config
    batch, key = self.minibatch(), jax.random.key(0)

    def run():
      t.state, metrics = rl_update(t.policy.graphdef, t.optimizer, t.objective.loss_spec, t.state,
                                   t.ref_params, batch, key,
                                   micro_batches=c.learner.micro_batches,
                                   temperature=float(c.rollout.temperature))
      return metrics
    return run


def profile_ops(run, top: int = 15):
  """Runs `run()` under the JAX profiler; prints the XLA ops that took longest (summed)."""
  run()
  with tempfile.TemporaryDirectory() as d:
    jax.profiler.start_trace(d, create_perfetto_trace=True)
    jax.block_until_ready(run())
    jax.profiler.stop_trace()
    path = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(path) as f:
      events = json.load(f)["traceEvents"]
  totals, counts = collections.Counter(), collections.Counter()
  for e in events:
    name = e.get("name", "")
    # XLA CPU thunks are named after their HLO instruction; skip runtime/Python spans.
    if e.get("ph") == "X" and not re.search(r"[ :$()]|^(while|call|conditional)", name):
      totals[name] += e.get("dur", 0)
      counts[name] += 1
  everything = sum(totals.values())
  by_kind = collections.Counter()
  for name, us in totals.items():
    by_kind[re.sub(r"\.\d+$", "", name)] += us
  print(f"\nupdate profile: {everything / 1e3:.1f} ms in XLA ops (summed over threads)")
  _common.print_table(["op kind", "ms", "share"],
                      [[k, f"{v / 1e3:.1f}", f"{v / everything:.0%}"]
                       for k, v in by_kind.most_common(top)])


# -- TRL -------------------------------------------------------------------------------------

def char_tokenizer(tokenizer):
  """Our CharTokenizer as a `PreTrainedTokenizerFast` (same ids; BOS prepended like ours)."""
  from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
  from transformers import PreTrainedTokenizerFast
  vocab = {s: i for i, s in enumerate(tokenizer.specials)}
  vocab.update({ch: i + len(tokenizer.specials) for i, ch in enumerate(tokenizer.alphabet)})
  tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
  tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
  tok.decoder = decoders.Fuse()
  tok.post_processor = processors.TemplateProcessing(single="<bos> $A",
                                                     special_tokens=[("<bos>", 1)])
  return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                 pad_token="<pad>")


def trl_step_times(jax_rl: JaxRL, steps: int, warmup: int, workdir: str) -> list[dict]:
  """Per timed RL step of TRL's GRPOTrainer (one generation + its optimizer steps), seconds:
  `step`, `sample` (HF generate), `rollout` (generate + rewards + old log-probs + advantages)."""
  import datasets
  import torch
  import transformers
  from trl import GRPOConfig, GRPOTrainer

  c, t = jax_rl.config, jax_rl.trainer
  mc = t.policy.config
  groups, n = c.rollout.prompts_per_step, c.rollout.num_samples
  updates = c.learner.mini_batches          # optimizer steps per generation
  torch.set_num_threads(_common.num_cores())
  torch.manual_seed(c.seed)
  model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
      vocab_size=mc.vocab_size, hidden_size=mc.hidden_size,
      intermediate_size=mc.intermediate_size, num_hidden_layers=mc.num_hidden_layers,
      num_attention_heads=mc.num_attention_heads, num_key_value_heads=mc.num_key_value_heads,
      head_dim=mc.head_size, max_position_embeddings=mc.max_position_embeddings,
      rms_norm_eps=mc.rms_norm_eps, tie_word_embeddings=mc.tie_word_embeddings,
      pad_token_id=0, bos_token_id=1, eos_token_id=2))
  problems = sample_problems(t.task, c.seed + 1, groups * (steps + warmup), c.difficulty)
  dataset = datasets.Dataset.from_list(
      [{"prompt": p.prompt, "index": i} for i, p in enumerate(problems)])
  max_len = c.max_response_len

  def reward(prompts, completions, completion_ids, index, **_):
    # Truncated = no EOS within the budget, as the JAX sampler reports it.
    eos = t.policy.tokenizer.eos_id
    return [t.task.score(problems[i], text, truncated=len(ids) >= max_len and ids[-1] != eos).reward
            for text, ids, i in zip(completions, completion_ids, index)]

  warnings.simplefilter("ignore", FutureWarning)   # transformers 5 renames, not ours
  args = GRPOConfig(
      output_dir=workdir, use_cpu=True, use_vllm=False, report_to="none", save_strategy="no",
      disable_tqdm=True, logging_steps=1_000_000, seed=c.seed, bf16=False,
      max_steps=updates * (steps + warmup), num_generations=n,
      per_device_train_batch_size=groups * n // updates, steps_per_generation=updates,
      gradient_accumulation_steps=1, num_iterations=c.learner.epochs,
      max_completion_length=max_len, temperature=c.rollout.temperature,
      learning_rate=c.optim.learning_rate, lr_scheduler_type="constant", warmup_steps=0,
      weight_decay=c.optim.weight_decay, max_grad_norm=c.optim.grad_clip,
      beta=c.objective.kl_coef, epsilon=c.objective.loss_kwargs.clip_eps_low,
      epsilon_high=c.objective.loss_kwargs.clip_eps_high,
      loss_type="dapo",                   # token-mean over the mini-batch, as `token-mean`
      dataloader_num_workers=0)
  marks: list[float] = []

  class Clock(transformers.TrainerCallback):
    def on_step_begin(self, *a, **k):
      marks.append(time.perf_counter())

    def on_train_end(self, *a, **k):
      marks.append(time.perf_counter())

  trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset,
                        processing_class=char_tokenizer(t.policy.tokenizer), callbacks=[Clock()])
  trainer.remove_callback(transformers.PrinterCallback)  # its end-of-training log dict
  phases: dict[str, list[float]] = {"sample": [], "rollout": []}

  def timed(fn, into):
    def wrapper(*a, **k):
      t0 = time.perf_counter()
      out = fn(*a, **k)
      into.append(time.perf_counter() - t0)
      return out
    return wrapper

  # Instance attributes shadow the methods: TRL's own code calls these wrappers.
  trainer._generate = timed(trainer._generate, phases["sample"])
  trainer._generate_and_score_completions = timed(trainer._generate_and_score_completions,
                                                  phases["rollout"])
  trainer.train()
  # marks[i] starts optimizer step i; an RL step is `updates` consecutive optimizer steps.
  starts = marks[::updates]
  steps_s = [b - a for a, b in zip(starts[:-1], starts[1:])]
  return [{"step": t, "sample": g, "rollout": r}
          for t, g, r in zip(steps_s, phases["sample"], phases["rollout"])][warmup:]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", default="grpo", help="a config name in configs/")
  parser.add_argument("--preset", help="model preset (default small; tiny with --quick)")
  parser.add_argument("--steps", type=int, default=3, help="timed RL steps (the best is kept)")
  parser.add_argument("--warmup", type=int, default=1, help="untimed steps (compilation)")
  parser.add_argument("--no-trl", action="store_true", help="skip TRL's GRPOTrainer")
  parser.add_argument("--profile", action="store_true", help="print the update's top XLA ops")
  parser.add_argument("--quick", action="store_true",
                      help="one timed step; the tiny preset unless --preset is given")
  args = parser.parse_args()
  if args.quick:
    args.steps = 1
  args.preset = args.preset or ("tiny" if args.quick else "small")
  use_trl = not args.no_trl and _common.available("datasets", "torch", "transformers", "trl")

  print(_common.describe_machine())
  peak = _common.matmul_peak_flops()
  print(f"matmul peak (f32 2048^2, jitted): {peak / 1e9:.1f} GFLOP/s")
  config = load_config(args.config, {"init_from": "", "model": args.preset})
  with tempfile.TemporaryDirectory() as workdir:
    rl = JaxRL(config, os.path.join(workdir, "jax"))
    params = rl.trainer.policy.config.num_params()
    c = config
    print(f"config {args.config}, preset {args.preset} ({params / 1e6:.2f}M params): "
          f"{c.rollout.prompts_per_step} prompts x {c.rollout.num_samples} samples, prompt "
          f"{c.max_prompt_len} + response {c.max_response_len} tokens, "
          f"{c.learner.mini_batches} mini-batches x {c.learner.epochs} epoch(s)")
    for s in range(args.warmup):
      rl.step(s)
    runs = [rl.step(args.warmup + s) for s in range(args.steps)]
    best = {k: min(r[k] for r in runs) for k in ("sample", "score", "update", "step")}
    update_alone = _common.best_time(rl.update_call(), repeats=5)
    jax_peak, what = _common.peak_memory_bytes()

    tokens = rl.processed_tokens()
    flops = 6.0 * params * tokens
    mini = c.learner.mini_batches * c.learner.epochs
    resp = np.mean([r["response_tokens"] for r in runs])
    sample_tokens = np.mean([r["sample_tokens"] for r in runs])
    print(f"\nJAX RL step (best of {args.steps} after {args.warmup} warm-up):")
    _common.print_table(["phase", "s", "note"], [
        ["sample", f"{best['sample']:.3f}", f"generate + verifier: {resp:.0f} response tokens, "
         f"{resp / best['sample']:,.0f} tok/s"],
        ["score", f"{best['score']:.3f}", "judge clusters, reward shaping, advantages (host)"],
        ["update", f"{best['update']:.3f}", f"{tokens} tokens processed, {mini} optimizer steps"],
        ["rl_update alone", f"{update_alone * mini:.3f}",
         f"{mini} x {update_alone * 1e3:.0f} ms (no host batching)"],
        ["step", f"{best['step']:.3f}", f"{sample_tokens / best['step']:,.0f} tok/s "
         f"(prompt x N + response tokens / step time)"],
    ])
    print(f"\nupdate FLOPs 6*params*tokens = {flops / 1e9:.1f} GFLOP")
    for label, secs in (("update phase", best["update"]), ("rl_update alone", update_alone * mini)):
      print(f"  {label}: {flops / secs / 1e9:.1f} GFLOP/s = {flops / secs / peak:.0%} of the "
            f"{peak / 1e9:.1f} GFLOP/s matmul peak (target >= 50%)")
    print(f"peak memory ({what}): {_common.mib(jax_peak)}")
    if args.profile:
      profile_ops(rl.update_call())

    if use_trl:
      trl = trl_step_times(rl, args.steps, args.warmup, os.path.join(workdir, "trl"))
      # JAX again after TRL, so both sides of the ratio saw the same range of machine load.
      runs += [rl.step(args.warmup + args.steps + s) for s in range(args.steps)]
      best = {k: min(r[k] for r in runs) for k in best}
      trl_best = {"sample": min(r["sample"] for r in trl),
                  "score": min(r["rollout"] - r["sample"] for r in trl),
                  "update": min(r["step"] - r["rollout"] for r in trl),
                  "step": min(r["step"] for r in trl)}
      took = ", ".join(f"{r['step']:.2f}" for r in trl)
      print(f"\nTRL GRPOTrainer, same shape/batch/lengths/prompts/reward (best of {len(trl)} "
            f"after {args.warmup} warm-up; its steps took {took} s), against JAX's best of "
            f"{len(runs)} steps:")
      _common.print_table(["phase", "TRL s", "JAX s", "TRL/JAX"], [
          [label, f"{trl_best[k]:.3f}", f"{best[k]:.3f}", f"{trl_best[k] / best[k]:.2f}x"]
          for label, k in (("sample (TRL: generate; JAX: + verifier)", "sample"),
                           ("score (TRL: rewards + old log-probs)", "score"),
                           ("update", "update"), ("RL step", "step"))])
      print(f"RL-step throughput, JAX / TRL: {trl_best['step'] / best['step']:.2f}x "
            "(target >= 3x)")
      print(f"peak memory after TRL ({what}): {_common.mib(_common.peak_memory_bytes()[0])}")
    elif not args.no_trl:
      print("(TRL skipped: install the `hf` extra: torch, transformers, trl, datasets)")
  print(f"load average at the end: {_common.load_average()}")


if __name__ == "__main__":
  main()
