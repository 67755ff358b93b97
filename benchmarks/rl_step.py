"""One RL step of the `grpo` config, phase by phase, side by side with TRL's GRPOTrainer.

A sweep over rows per step R in {32, 64, 128} (R / 8 prompts x 8 samples, two
optimizer updates of R / 2 rows) and response lengths M in {28, 64}, from a fresh
`small` model and from the SFT prior (`explore_rl.harness.sft_prior()`,
trained once if missing: ~4 min), prompt 20 tokens. Per point it prints the best
step time over the timed steps (compilation excluded by a warm-up step whose
compile seconds are reported), the share of padding in the update's token slots
(packed: training/packing.py; padded: the [P | M] layout), and, with the `hf`
extra (torch, transformers, trl, datasets), TRL's `GRPOTrainer` on a
`LlamaForCausalLM` of the same shape and weights (the fresh model's own random
init, or the SFT prior exported with `hf_export`), same prompts, reward, group
size, lengths, mini-batches, clip and loss aggregation, and the ratio of step times.

Then the update's matmul efficiency: `rl_update` alone on packed mini-batches of
32, 64 and 128 rows of the R = 128 steps, counting only real tokens,

  FLOP/s = 6 * params * real tokens / time,  as a fraction of the measured matmul peak
  (f32, or bf16 with --matmul-dtype bfloat16),

beside the same fraction for the model's projection matmuls alone on the same tokens
(`dense_dots`): the ceiling this model's matmul shapes put on the update on this machine,
and the compile time of a fresh `explore-rl train` (1 step) run twice with the
same persistent compilation cache (the second must spend < 20% of the first).

JAX runs on one XLA:CPU device per core (`--cpu-devices`) with the mesh data=-1, fsdp=1:
each device samples and updates on its share of the rows (with `--model`, one device whose
matmuls use every core: `_common.default_cpu_devices` says why); TRL runs on as many torch
threads as there are cores.

Speed targets: RL step >= 2.5x TRL's (goal 3x) at every point; the update at
>= 60% of the matmul peak (real tokens) at 32, 64, 128 rows; padding < 10%.

`--model smollm2-135m-instruct`: the real model (configs/smollm2_grpo.py, remat on)
instead of a preset: 8 prompts x 8 samples at response lengths 128 and 256, full
fine-tuning and LoRA (`--modes`; rank 16 on every projection, lr 1e-4), next to TRL on the
same dequantised weights and tokenizer (benchmarks/_named_model.py; its LoRA through peft
with the same rank, alpha and targets; gradient checkpointing as our remat), the update
alone on one 64-row mini-batch, peak RSS, and the compile seconds of a fresh and a cached
`explore-rl train` of the model (`:smoke` shapes: compile time follows the program, not the
batch). Targets there: >= 2x TRL at every point; the fp32 update >= 50% of the matmul
peak; peak RSS <= 6 GB at 8 x 8 x 256 full fine-tuning; first compile <= 60 s, the cached
rerun <= 20% of it.

  python benchmarks/rl_step.py                  # the full sweep (~15-30 min on 2 cores)
  python benchmarks/rl_step.py --rows 64 --lengths 28 --inits fresh
  python benchmarks/rl_step.py --quick          # tiny, R 32, M 28, fresh, 1 timed step
  python benchmarks/rl_step.py --profile        # + the update's most expensive XLA ops
  python benchmarks/rl_step.py --no-trl --no-compile-cache
  python benchmarks/rl_step.py --matmul-dtype bfloat16 [--trl-bf16]   # mixed precision
  python benchmarks/rl_step.py --model smollm2-135m-instruct       # the real model (~1.5 h)
  python benchmarks/rl_step.py --model smollm2-135m-instruct --lengths 128 --modes full
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import inspect
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import _common
import _named_model
from explore_rl import compile_time
from explore_rl.config_files import load_config
from explore_rl.models.config import get_preset
from explore_rl.objectives.policy_loss import ppo_loss
from explore_rl.tasks import sample_problems
from explore_rl.distributed import to_host
from explore_rl.training import epochs, packing
from explore_rl.training.dynamic_sampling import sample_groups
from explore_rl.training.epochs import rl_epochs
from explore_rl.training.group_context import group_context
from explore_rl.training.rl import RLTrainer
from explore_rl.training.update import RLBatch, rl_update

PROMPTS_PER_ROW = 8   # samples per prompt: R rows = R / 8 prompts x 8 samples
# the targets printed beside the figures (this docstring): the step's ratio to TRL's and the
# update's share of the matmul peak, for the presets and for the real model (`--model`)
TARGETS = {"preset": {"trl": 2.5, "peak": 0.60}, "model": {"trl": 2.0, "peak": 0.50}}


class JaxRL:
  """An `RLTrainer` stepped phase by phase, as `step.rl_step` does (no eval, no checkpoint)."""

  def __init__(self, config, workdir: str):
    self.trainer = RLTrainer(config, workdir, progress=False)
    self.config = config
    self.base = jax.random.key(config.seed)

  def step(self, step: int) -> dict:
    t = self.trainer
    k_sample, k_adv, k_update = jax.random.split(jax.random.fold_in(self.base, step), 3)
    t0 = time.perf_counter()
    scored, _ = sample_groups(t, k_sample)    # the host copy: already synchronised
    t1 = time.perf_counter()
    context, _ = group_context(t, scored, t.parts.objective.needs, k_adv)
    _, adv = map(np.asarray, to_host(t.parts.objective(context)))
    t2 = time.perf_counter()
    rl_epochs(t, scored, adv, step, k_update)    # ends in device_get of the metrics
    t3 = time.perf_counter()
    self.last = scored, adv
    mask = scored.host.mask
    return {"sample": t1 - t0, "score": t2 - t1, "update": t3 - t2, "step": t3 - t0,
            "response_tokens": int(mask.sum()),
            "sample_tokens": int(mask.sum() + scored.host.prompt_valid.sum()
                                 * scored.num_samples)}

  def minibatch(self, rows: int) -> RLBatch:
    """The first `rows` rows of the last step, padded, on the host (as `epochs.rl_batch`
    builds them)."""
    scored, adv = self.last
    n, ro = scored.num_samples, scored.host
    full = dict(prompt_tokens=np.repeat(ro.prompt_tokens, n, 0)[:rows],
                prompt_valid=np.repeat(ro.prompt_valid, n, 0)[:rows],
                response_tokens=ro.tokens[:rows], response_mask=ro.mask[:rows],
                old_logprobs=ro.policy_logprobs[:rows],
                behaviour_logprobs=ro.behaviour_logprobs[:rows],
                advantages=adv.reshape(-1)[:rows].astype(np.float32))
    return RLBatch(**full)

  def packed(self, rows: int) -> tuple[RLBatch, dict]:
    """(`minibatch(rows)` as the trainer lays it out on the mesh: in the layout a fresh
    `RowLayout` chooses for it (as few rows as it needs, not the run's high-water mark); token
    counts)."""
    t, c = self.trainer, self.config
    layout = packing.RowLayout(c.max_prompt_len, c.max_response_len,
                               groups=t.parts.row_layout.groups)
    mb = epochs.packed(layout, self.minibatch(rows))
    real = int(np.asarray(mb.prompt_valid).sum() + np.asarray(mb.response_mask).sum())
    padded = mb.prompt_valid.size + mb.response_mask.size   # the trainer may keep it padded
    return epochs.on_mesh(t.mesh, mb), {
        "real": real, "padded": padded,
        "packed": padded if mb.packed_tokens is None else mb.packed_tokens.size}

  def update_call(self, batch: RLBatch):
    """A closure running one `rl_update` on `batch` (the state is donated and kept)."""
    t, c = self.trainer, self.config
    key = jax.random.key(0)

    def run():
      t.state, metrics = rl_update(t.policy.graphdef, t.parts.optimizer,
                                   t.parts.objective.loss_spec, t.state, t.ref_params, batch, key,
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


def trl_step_times(jax_rl: JaxRL, steps: int, warmup: int, workdir: str,
                   from_weights: bool, bf16: bool = False, model_name: str | None = None
                   ) -> list[dict]:
  """Per timed RL step of TRL's GRPOTrainer (one generation + its optimizer steps), seconds:
  `step`, `sample` (HF generate), `rollout` (generate + rewards + old log-probs + advantages).

  from_weights: start from the run's `init_from` weights (exported with `hf_export`: the
  SFT prior); else from a random init of the same shape. bf16: TRL's `bf16=True` (fp32
  weights, torch autocast to bf16 on the CPU). model_name: the packaged model the run starts
  from: its GGUF tokenizer, prompts as chat messages (TRL applies the template, as our
  tokenizer does), LoRA through peft when the run has adapters."""
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
  if from_weights:
    from explore_rl.models.hf_export import save_hf_checkpoint
    from explore_rl.training.policy_loader import load_initial_policy
    hf_dir = os.path.join(workdir, "hf_prior")
    prior = load_initial_policy(c.init_from)    # the trainer's copy was donated to its updates
    save_hf_checkpoint(hf_dir, mc, jax.device_get(prior.params), model_type="llama")
    model = transformers.LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
  else:
    model = _common.hf_llama(mc, pad_token_id=0, bos_token_id=1, eos_token_id=2)
  problems = sample_problems(t.parts.task, c.seed + 1, groups * (steps + warmup), c.difficulty)
  chat = model_name is not None
  dataset = datasets.Dataset.from_list(
      [{"prompt": [{"role": "user", "content": p.prompt}] if chat else p.prompt, "index": i}
       for i, p in enumerate(problems)])
  max_len = c.max_response_len

  def reward(prompts, completions, completion_ids, index, **_):
    # Truncated = no EOS within the budget, as the JAX sampler reports it.
    eos = t.policy.tokenizer.eos_id
    return [t.parts.task.score(problems[i], text,
                               truncated=len(ids) >= max_len and ids[-1] != eos).reward
            for text, ids, i in zip(
                [c[-1]["content"] for c in completions] if chat else completions,
                completion_ids, index)]

  clip = {k: p.default for k, p in inspect.signature(ppo_loss).parameters.items()
          if k.startswith("clip_eps")}
  clip.update({k: v for k, v in c.objective.loss_kwargs.items() if k in clip})
  warnings.simplefilter("ignore", FutureWarning)   # transformers 5 renames, not ours
  args = GRPOConfig(
      output_dir=workdir, use_cpu=True, use_vllm=False, report_to="none", save_strategy="no",
      disable_tqdm=True, logging_steps=1_000_000, seed=c.seed, bf16=bf16,
      max_steps=updates * (steps + warmup), num_generations=n,
      per_device_train_batch_size=groups * n // updates, steps_per_generation=updates,
      gradient_accumulation_steps=1, num_iterations=c.learner.epochs,
      max_completion_length=max_len, temperature=c.rollout.temperature,
      learning_rate=c.optim.learning_rate, lr_scheduler_type="constant", warmup_steps=0,
      weight_decay=c.optim.weight_decay, max_grad_norm=c.optim.grad_clip,
      beta=c.objective.kl_coef, epsilon=clip["clip_eps_low"], epsilon_high=clip["clip_eps_high"],
      loss_type="dapo",                   # token-mean over the mini-batch, as `token-mean`
      gradient_checkpointing=mc.remat,    # TRL's default is on; ours is `model.remat`
      dataloader_num_workers=0)
  peft_config = None
  if mc.lora_rank:
    from peft import LoraConfig
    peft_config = LoraConfig(r=mc.lora_rank, lora_alpha=mc.lora_alpha, lora_dropout=0.0,
                             target_modules=list(mc.lora_targets), task_type="CAUSAL_LM")
  marks: list[float] = []

  class Clock(transformers.TrainerCallback):
    def on_step_begin(self, *a, **k):
      marks.append(time.perf_counter())

    def on_train_end(self, *a, **k):
      marks.append(time.perf_counter())

  trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset,
                        processing_class=(_named_model.hf_tokenizer(model_name) if chat
                                          else char_tokenizer(t.policy.tokenizer)),
                        peft_config=peft_config, callbacks=[Clock()])
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


def cli_compile_seconds(args) -> list[float]:
  """XLA compile seconds of `explore-rl train` (1 step) run twice with one fresh persistent
  compilation cache, as the CLI prints them: grpo on a fresh `args.preset`, or with `--model`
  configs/smollm2_grpo.py:smoke (the real model, its shapes cut to 2 x 2 x 16)."""
  if args.model:
    flags = ["--config", "configs/smollm2_grpo.py:smoke"]
  else:
    flags = ["--config", "configs/grpo.py", "--config.init_from=",
             f"--config.model.preset={args.preset}", "--config.total_steps=1",
             "--config.eval_every=100", "--config.checkpoint_every=100"]
  out = []
  with tempfile.TemporaryDirectory() as d:
    for run in range(2):
      cmd = [sys.executable, "-m", "explore_rl.cli", "train", "--workdir",
             os.path.join(d, f"run{run}"), "--compile_cache", os.path.join(d, "cc")] + flags
      text = subprocess.run(cmd, capture_output=True, text=True, check=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout
      out.append(float(re.search(r"compile time: ([\d.]+) s XLA", text).group(1)))
  return out


def point_config(args, rows: int, length: int, init: str):
  """A sweep point's config. `init`: fresh or sft (presets), full or lora (`--model`)."""
  overrides = {"rollout.prompts_per_step": rows // PROMPTS_PER_ROW,
               "rollout.num_samples": PROMPTS_PER_ROW, "max_response_len": length}
  if args.model:   # configs/smollm2_grpo.py starts from the model; remat on
    overrides.update({"model.remat": True, "init_from": args.model})
    if init == "lora":   # the rank and learning rate configs/smollm2_grpo.py documents
      overrides.update({"model.lora.rank": 16, "optim.learning_rate": 1e-4})
  else:
    overrides.update({"model.preset": args.preset,
                      "init_from": "" if init == "fresh" else args.prior})
  if jax.device_count() > 1:   # data parallel: each device its share of the rows, as sampler.py
    overrides.update({"mesh.data": -1, "mesh.fsdp": 1})
  if args.matmul_dtype != "float32":   # bf16 matmul inputs, fp32 weights (models/dense.py)
    overrides["model_overrides.matmul_dtype"] = args.matmul_dtype
  return load_config(args.config, overrides)


def run_point_apart(*point_args) -> dict:
  """`run_point` in a fresh child process. What a point leaves behind (TRL's trainer, compiled
  programs, memory torch's allocator keeps) is gone before the next, and the child's peak RSS
  after its RL steps is theirs alone. In one process the four `--model` points grew to
  24 GB, and the forward + backward comparison after them was killed for memory."""
  with multiprocessing.get_context("spawn").Pool(1) as pool:
    return pool.apply(_run_point_child, point_args)


def _run_point_child(args, *point_args) -> dict:
  _common.use_cpu_devices(args.cpu_devices)
  compile_time.start()
  return run_point(args, *point_args)


def run_point(args, rows: int, length: int, init: str, workdir: str, peak: float) -> dict:
  """One sweep point: JAX phases (+ TRL), padding, first-step compile, update efficiencies,
  peak RSS of the RL steps (`jax_rss`, the process's before the update alone and TRL)."""
  config = point_config(args, rows, length, init)
  rl = JaxRL(config, os.path.join(workdir, "jax"))
  before = compile_time.seconds()
  for s in range(args.warmup):
    rl.step(s)
  compiled = {k: v - before[k] for k, v in compile_time.seconds().items()}
  runs = [rl.step(args.warmup + s) for s in range(args.steps)]
  mb_rows = rows // config.learner.mini_batches
  _, counts = rl.packed(mb_rows)
  out = {"rows": rows, "length": length, "init": init, "compile": compiled,
         "response_len": np.mean([r["response_tokens"] for r in runs]) / rows,
         "real_tokens": np.mean([r["sample_tokens"] for r in runs]),
         "update_flops": update_flops(rl.trainer.policy.config,
                                      np.mean([r["sample_tokens"] for r in runs])),
         "pad_packed": 1 - counts["real"] / counts["packed"],
         "pad_padded": 1 - counts["real"] / counts["padded"], "efficiency": {}}
  # the RL steps' own peak, before the measurements below (`dense_dots` at 135M: ~10 GB more)
  out["jax_rss"] = _common.peak_memory_bytes()[0]
  # The update alone on packed mini-batches: of 32, 64 and 128 rows (presets, at the largest
  # R), of the run's R rows (`--model`, full fine-tuning, one timed run: each update takes
  # minutes on 2 cores).
  model_config = rl.trainer.policy.config
  measure = (init == "full") if args.model else rows == max(args.rows)
  for r in ((rows,) if args.model else (32, 64, 128)) if measure else ():
    if r <= rows:
      batch, counts = rl.packed(r)
      secs = _common.best_time(rl.update_call(batch), repeats=1 if args.model else 5)
      dots_s, dots_flops = dense_dots(model_config, args.matmul_dtype, counts["real"])
      out["efficiency"][r] = (update_flops(model_config, counts["real"]) / secs / peak, secs,
                              counts, dots_flops / dots_s / peak)
  if measure and args.profile:
    profile_ops(rl.update_call(rl.packed(mb_rows)[0]))
  if args.trl:
    trl = trl_step_times(rl, args.steps, args.warmup, os.path.join(workdir, "trl"),
                         from_weights=bool(args.model) or init != "fresh",
                         bf16=args.trl_bf16, model_name=args.model)
    # JAX again after TRL, so both sides of the ratio saw the same range of machine load.
    runs += [rl.step(args.warmup + args.steps + s) for s in range(args.steps)]
    out["trl"] = {"step": min(r["step"] for r in trl), "sample": min(r["sample"] for r in trl),
                  "update": min(r["step"] - r["rollout"] for r in trl)}
  out.update({k: min(r[k] for r in runs) for k in ("sample", "score", "update", "step")})
  out["load"] = _common.load_average()
  return out


def print_target_budget(points: list[dict], peak: float, ratio: float):
  """What `ratio` x TRL's step (the target) leaves for our update, after our own sampling and
  scoring, as the fraction of the matmul peak the update would need (`update_flops` of the
  step's real tokens); beside it, the fraction TRL's update reaches on the same tokens."""
  print(f"\nthe {ratio:g}x target as a budget: TRL step / {ratio:g} - our sample and score "
        "phases = the time left for our update; the fraction of the matmul peak it would need, "
        "and TRL's own:")
  rows_out = []
  for p in points:
    flops = p["update_flops"]
    left = p["trl"]["step"] / ratio - p["sample"] - p["score"]
    need = f"{flops / left / peak:.0%}" if left > 0 else "none left"
    rows_out.append([p["init"], p["length"], p["rows"], f"{p['real_tokens']:.0f}",
                     f"{p['update']:.3f}", f"{left:.3f}", need,
                     f"{flops / p['update'] / peak:.0%}",
                     f"{flops / p['trl']['update'] / peak:.0%}"])
  _common.print_table(["init", "M", "R", "real tokens", "our update s", "update s left",
                       "peak needed", "our update", "TRL update"], rows_out)


def update_flops(config, tokens: int) -> float:
  """The useful FLOPs of an update on `tokens` real tokens: 6 * params (forward, and the
  backward's activation and weight gradients), 4 * params with LoRA (the frozen weights
  get no gradient; the adapters' own FLOPs are negligible). Remat's second forward is not
  useful work and is not counted."""
  return (4.0 if config.lora_rank else 6.0) * config.num_params() * tokens


def dense_dots(config, matmul_dtype: str, tokens: int, repeats: int = 5):
  """The model's projection matmuls alone, forward + backward on `tokens` rows: every layer's
  q, k, v, o, gate, up and down and the lm head, chained with as little else as possible, in
  the update's matmul dtype (models/dense.py for bf16), rows over a data mesh of every device
  as the update's. What XLA:CPU reaches on this model's matmul shapes at this token count:
  the update does these dots plus attention, norms, the loss and the optimizer, so its share
  of the peak on real tokens cannot pass this one's. Returns (seconds, FLOPs)."""
  from jax.sharding import NamedSharding, PartitionSpec
  from explore_rl.models import dense, sharding, transformer
  _, params = transformer.init(config.replace(lora_rank=0))
  layers = [[layer["self_attn"][k]["kernel"] for k in ("q_proj", "k_proj", "v_proj", "o_proj")]
            + [layer["mlp"][k]["kernel"] for k in ("gate_proj", "up_proj", "down_proj")]
            for layer in params["layers"].values()]
  head = params["lm_head"]["kernel"] if "lm_head" in params \
      else params["embed_tokens"]["embedding"].T
  low = dense.MATMUL_DTYPES.get(matmul_dtype)
  mm = (lambda x, w: dense.matmul(x, w, low)) if low else jnp.dot

  def loss(layers, head, x):
    for q, k, v, o, gate, up, down in layers:
      a = mm(x, q) + mm(x, k).mean(-1, keepdims=True) + mm(x, v).mean(-1, keepdims=True)
      x = x + mm(a, o)
      x = x + mm(jax.nn.silu(mm(x, gate)) * mm(x, up), down)
    return mm(x, head).sum()

  mesh = sharding.make_mesh({"data": -1, "fsdp": 1, "tensor": 1})
  tokens = -(-tokens // jax.device_count()) * jax.device_count()
  x = jax.device_put(jax.random.normal(jax.random.key(0), (tokens, head.shape[0])),
                     sharding.batch_sharding(mesh, 2))
  layers, head = jax.device_put((layers, head), NamedSharding(mesh, PartitionSpec()))
  grad = jax.jit(jax.grad(loss, (0, 1)))
  weights = sum(w.size for w in jax.tree.leaves(layers)) + head.size
  return _common.best_time(lambda: grad(layers, head, x), repeats=repeats), 6.0 * weights * tokens


def forward_backward(config, matmul_dtype: str, rows: int = 64, length: int = 96,
                     repeats: int = 5):
  """One forward + backward of the model on [rows, length] tokens (no padding), loss
  mean(log_softmax), JAX jitted (one device) vs torch eager on the same shape: how fast each
  framework runs the same graph on this CPU, apart from either trainer. With a bf16
  `matmul_dtype`, torch runs under CPU autocast to bf16."""
  import contextlib
  import torch
  from explore_rl.models import transformer
  mc = config.replace(lora_rank=0, remat=False, matmul_dtype=matmul_dtype)
  graphdef, params = transformer.init(mc)
  tokens = np.random.default_rng(0).integers(0, mc.vocab_size, (rows, length)).astype(np.int32)
  loss = lambda p: jax.nn.log_softmax(transformer.forward(graphdef, p, tokens)).mean()
  grad = jax.jit(jax.value_and_grad(loss))
  jax_s = _common.best_time(lambda: grad(params), repeats=repeats)
  torch.set_num_threads(_common.num_cores())
  model = _common.hf_llama(mc)
  ids = torch.from_numpy(tokens.astype(np.int64))

  def torch_step():
    model.zero_grad()
    with (torch.autocast("cpu", torch.bfloat16) if matmul_dtype == "bfloat16"
          else contextlib.nullcontext()):
      logits = model(input_ids=ids).logits
    torch.log_softmax(logits.float(), -1).mean().backward()
  torch_s = _common.best_time(torch_step, repeats=repeats)
  return jax_s, torch_s, 6.0 * mc.num_params() * rows * length


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", help="a config name in configs/ (default grpo; --model: "
                                       "smollm2_grpo)")
  parser.add_argument("--preset", help="model preset (default small; tiny with --quick)")
  parser.add_argument("--model", help="a packaged model (smollm2-135m-instruct) instead of a "
                                      "preset, TRL on the same weights")
  parser.add_argument("--rows", help="rows per step (x 8 samples each; default 32,64,128; "
                                     "--model: 64)")
  parser.add_argument("--lengths", help="response lengths (default 28,64; --model: 128,256)")
  parser.add_argument("--inits", default="fresh,sft", help="fresh and/or sft (the SFT prior)")
  parser.add_argument("--modes", default="full,lora",
                      help="--model: full fine-tuning and/or LoRA (instead of --inits)")
  parser.add_argument("--prior", help="SFT prior workdir (default: harness.sft_prior())")
  parser.add_argument("--steps", type=int, default=2, help="timed RL steps (the best is kept)")
  parser.add_argument("--warmup", type=int, default=1, help="untimed steps (compilation)")
  parser.add_argument("--no-trl", action="store_true", help="skip TRL's GRPOTrainer")
  parser.add_argument("--no-compile-cache", action="store_true",
                      help="skip the two CLI runs that measure the persistent cache")
  parser.add_argument("--profile", action="store_true", help="print the update's top XLA ops")
  parser.add_argument("--cpu-devices", type=int, default=None,
                      help="XLA:CPU devices; above 1 the run's mesh is data=-1, fsdp=1 (default: "
                           "one device per core, one with --model)")
  parser.add_argument("--no-forward-backward", action="store_true",
                      help="skip the JAX vs torch eager forward + backward of the model")
  parser.add_argument("--matmul-dtype", default="float32", choices=["float32", "bfloat16"],
                      help="the input dtype of JAX's projection matmuls (model_overrides."
                           "matmul_dtype, models/dense.py); the peak is then this dtype's")
  parser.add_argument("--trl-bf16", action="store_true",
                      help="TRL with bf16=True (torch autocast on the CPU)")
  parser.add_argument("--quick", action="store_true",
                      help="tiny, R 32, M 28, fresh, one timed step")
  args = parser.parse_args()
  if args.quick:
    args.steps, args.rows, args.lengths, args.inits = 1, "32", "28", "fresh"
  args.config = args.config or ("smollm2_grpo" if args.model else "grpo")
  args.preset = args.preset or ("tiny" if args.quick else "small")
  args.rows = [int(r) for r in (args.rows or ("64" if args.model else "32,64,128")).split(",")]
  args.lengths = [int(m) for m in (args.lengths or ("128,256" if args.model else "28,64"))
                  .split(",")]
  # the sweep's third axis: the starting weights (presets) or the trained parameters (--model)
  args.inits = (args.modes if args.model else args.inits).split(",")
  args.trl = not args.no_trl and _common.available("datasets", "torch", "transformers", "trl")
  # first: training the SFT prior below starts JAX's backends
  args.cpu_devices = args.cpu_devices or _common.default_cpu_devices(args.model)
  _common.use_cpu_devices(args.cpu_devices)
  if "sft" in args.inits and not args.prior:
    from explore_rl.harness import sft_prior
    args.prior = sft_prior()
  compile_time.start()

  print(_common.describe_machine())
  peak = _common.matmul_peak_flops(dtype=jnp.dtype(args.matmul_dtype))
  print(f"matmul peak ({args.matmul_dtype} 2048^2, jitted): {peak / 1e9:.1f} GFLOP/s; JAX "
        f"matmul inputs {args.matmul_dtype}, TRL {'bf16 autocast' if args.trl_bf16 else 'f32'}")
  c = load_config(args.config, {} if args.model else {"model.preset": args.preset})
  model_config = (_named_model.config(args.model) if args.model
                  else get_preset(args.preset))
  print(f"mesh: {'data parallel over ' if len(jax.devices()) > 1 else ''}"
        f"{len(jax.devices())} device(s)")
  print(f"config {args.config}, {args.model or 'preset ' + args.preset}: {PROMPTS_PER_ROW} "
        f"samples per prompt, "
        f"prompt {c.max_prompt_len} tokens, {c.learner.mini_batches} mini-batches x "
        f"{c.learner.epochs} epoch(s); best of {args.steps} timed steps after {args.warmup} "
        f"warm-up" + (", twice (before and after TRL)" if args.trl else ""))
  points = []
  with tempfile.TemporaryDirectory() as workdir:
    for init in args.inits:
      for length in args.lengths:
        for rows in args.rows:
          point = run_point_apart(args, rows, length, init,
                                  os.path.join(workdir, f"{init}-{length}-{rows}"), peak)
          points.append(point)
          trl = f", TRL {point['trl']['step']:.2f} s" if args.trl else ""
          print(f"  [{init} M={length} R={rows}] step {point['step']:.2f} s{trl}, JAX peak RSS "
                f"{_common.mib(point['jax_rss'])}, load {point['load']}", flush=True)

  target = TARGETS["model" if args.model else "preset"]
  print(f"\nRL step (s), JAX vs TRL (target JAX >= {target['trl']:g}x); padding of the update's "
        "token slots; first-step compile:")
  headers = ["init", "M", "R", "resp len", "sample", "update", "step"]
  if args.trl:
    headers += ["TRL sample", "TRL update", "TRL step", "TRL/JAX"]
  headers += ["pad packed", "pad padded", "compile s (XLA+trace)", "JAX peak RSS", "load"]
  rows_out = []
  for p in points:
    row = [p["init"], p["length"], p["rows"], f"{p['response_len']:.1f}", f"{p['sample']:.3f}",
           f"{p['update']:.3f}", f"{p['step']:.3f}"]
    if args.trl:
      t = p["trl"]
      row += [f"{t['sample']:.3f}", f"{t['update']:.3f}", f"{t['step']:.3f}",
              f"{t['step'] / p['step']:.2f}x"]
    row += [f"{p['pad_packed']:.0%}", f"{p['pad_padded']:.0%}",
            f"{p['compile']['xla']:.1f}+{p['compile']['trace']:.1f}",
            _common.mib(p["jax_rss"]), p["load"]]
    rows_out.append(row)
  _common.print_table(headers, rows_out)
  if args.trl:
    print_target_budget(points, peak, target["trl"])

  print("\nupdate alone (rl_update, one packed mini-batch), FLOPs = 6 * params * real tokens "
        f"(target >= {target['peak']:.0%} of the matmul peak):")
  eff = [[p["init"], p["length"], r, counts["real"], counts["packed"], f"{secs * 1e3:.0f}",
          f"{frac * peak / 1e9:.1f}", f"{frac:.0%}", f"{dots:.0%}", f"{frac / dots:.0%}"]
         for p in points for r, (frac, secs, counts, dots) in p["efficiency"].items()]
  _common.print_table(["init", "M", "rows", "real tokens", "slots", "ms", "GFLOP/s", "of peak",
                       "dots alone", "of dots"], eff)
  print("(dots alone: the model's projection matmuls by themselves, forward + backward on the "
        "same real tokens (`dense_dots`), as a share of the peak: the ceiling of this model's "
        "matmul shapes; of dots: the update's speed as a share of that ceiling)")

  if not args.no_forward_backward and _common.available("torch", "transformers"):
    jax_s, torch_s, flops = forward_backward(model_config, args.matmul_dtype)
    print(f"\nforward + backward of {args.model or args.preset} on [64, 96] tokens (no "
          f"padding, random weights): JAX jitted "
          f"{jax_s * 1e3:.0f} ms ({flops / jax_s / peak:.0%} of the peak), torch eager "
          f"{torch_s * 1e3:.0f} ms ({flops / torch_s / peak:.0%}): JAX/torch time "
          f"{jax_s / torch_s:.2f}x")

  if not args.no_compile_cache:
    first, second = cli_compile_seconds(args)
    what = "smollm2_grpo:smoke" if args.model else f"grpo, fresh {args.preset}"
    print(f"\nexplore-rl train ({what}, 1 step), XLA compile seconds with one "
          f"fresh persistent cache: first run {first:.1f} s, second run {second:.1f} s = "
          f"{second / first:.0%} of the first (target < 20%)")
  if not args.trl and not args.no_trl:
    print("(TRL skipped: install the `hf` extra: torch, transformers, trl, datasets)")
  print(f"peak memory of this process, without the points' own ({_common.peak_memory_bytes()[1]}"
        f"): {_common.mib(_common.peak_memory_bytes()[0])}")
  print(f"load average at the end: {_common.load_average()}")


if __name__ == "__main__":
  main()
