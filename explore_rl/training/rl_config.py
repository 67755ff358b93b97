"""The base RL config every `configs/<method>.py` starts from.

The demo task is `partition` (write a target as a sum of allowed parts; every
distinct multiset is a distinct strategy), at the `small` preset on CPU. A
method config changes only `objective` (and what the method's paper changes).
`arg="tiny"` turns any config into its smoke-test variant: the tiny preset, no
SFT start, two steps.
"""
import ml_collections

from explore_rl.models.lora import ALL_TARGETS


def model_settings(preset: str) -> ml_collections.ConfigDict:
  """`config.model`: the preset a fresh model takes, and on any starting model LoRA
  adapters (`lora.rank` 0: full fine-tuning; `targets` comma-separated projections) and
  per-block rematerialisation (`remat`); models/lora.py, training/policy_loader.py."""
  return ml_collections.ConfigDict(dict(
      preset=preset, remat=False,
      lora=ml_collections.ConfigDict(dict(rank=0, alpha=16.0, targets=",".join(ALL_TARGETS)))))


def rl_config(arg=None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.trainer = "rl"
  c.seed = 0
  c.total_steps = 60
  c.eval_every = 30
  c.checkpoint_every = 30
  c.keep_checkpoints = 3
  c.max_consecutive_skips = 5

  c.model = model_settings("small")      # the preset is used when init_from is empty
  c.model_overrides = ml_collections.ConfigDict()
  c.init_from = "runs/demo/sft"          # an SFT workdir (explore-rl train --config configs/sft.py)
  # sampler_devices: devices the sampler draws on, the learner keeps the rest (0: they
  # time-share; needs rollout.max_staleness >= 1; training/async_rollouts.py)
  c.mesh = ml_collections.ConfigDict(dict(data=1, fsdp=-1, tensor=1, num_devices=0,
                                          sampler_devices=0))

  c.task = "partition"
  c.task_kwargs = ml_collections.ConfigDict()
  c.curriculum = "uniform"
  c.difficulty = 0.5
  c.max_prompt_len = 20
  c.max_response_len = 28
  c.judge = "signature"
  c.judge_kwargs = ml_collections.ConfigDict()
  c.log_clusters = True

  c.rollout = ml_collections.ConfigDict(dict(
      sampler="independent",            # explore_rl.sampling.SAMPLERS (docs/design.md)
      sampler_kwargs=ml_collections.ConfigDict(),
      prompts_per_step=16, num_samples=8, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0,
      # pi_old of the PPO ratio: the sampler's policy log-probs (free) or a recompute
      # (a forward pass; differs only by decode-vs-forward numerics)
      old_logprobs="sampler",
      # how many policy versions the sampler may run ahead of the learner: 0 samples and
      # trains in lock-step; k >= 1 draws rollout s + k while step s trains (docs/async.md)
      max_staleness=0))
  c.learner = ml_collections.ConfigDict(dict(epochs=1, mini_batches=2, micro_batches=1))
  c.optim = ml_collections.ConfigDict(dict(
      learning_rate=1e-4, warmup_steps=0, schedule="constant", weight_decay=0.0, grad_clip=1.0))

  c.objective = ml_collections.ConfigDict(dict(
      advantage="grpo", advantage_kwargs=ml_collections.ConfigDict(),
      reward_shaper="", reward_shaper_kwargs=ml_collections.ConfigDict(),
      # the loss's own defaults apply unless set here (ppo: clip 0.2/0.2, dual clip 3)
      loss="ppo", loss_kwargs=ml_collections.ConfigDict(),
      # the policy loss only on some tokens (objectives/token_masks.py): none | forking
      # (the top forking_fraction of each mini-batch's tokens by entropy, arXiv 2506.01939)
      token_mask="none", forking_fraction=0.2,
      aggregation="token-mean", aggregation_kwargs=ml_collections.ConfigDict(),
      kl_coef=0.0, kl_estimator="k3", entropy_coef=0.0,
      # the token covariance Cov(log π, A) statistics (cov_mean, cov_top*_mean): a
      # measuring term, computed only when on (objectives/loss_terms.py)
      covariance_stats=True,
      # further registered loss terms: {name: hyper-parameters} (docs/design.md)
      loss_terms=ml_collections.ConfigDict(),
      # importance correction for tokens drawn by mu != pi_old (top-k/p, another policy or
      # context; objectives/importance.py, docs/algorithms.md "Importance corrections"):
      # none | token_tis | seq_tis (truncation C = is_cap, 2 as TIS/verl) | token_mis |
      # seq_mis (drop ratios outside [is_lower, is_upper] = [0.5, 2], verl's rejection
      # bounds) | geometric (exp(mean_t log ratio) per sequence, GSPO-style)
      is_correction="none", is_cap=2.0, is_lower=0.5, is_upper=2.0,
      # DAPO dynamic sampling: rounds of `oversample` x prompts until every trained
      # group is informative, at most max_sampling_rounds rounds
      dynamic_sampling=False, oversample=1.0, max_sampling_rounds=4))

  c.eval = ml_collections.ConfigDict(dict(num_prompts=128, num_samples=8, temperature=1.0))

  if arg == "tiny":
    c.model.preset = "tiny"
    c.init_from = ""
    c.total_steps = 2
    c.eval_every = c.checkpoint_every = 2
    c.rollout.prompts_per_step = 4
    c.eval.num_prompts = 4
    c.eval.num_samples = 4
  elif arg not in (None, ""):
    raise ValueError(f"unknown config arg {arg!r}; valid: tiny")
  return c
