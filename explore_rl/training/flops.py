"""The run's FLOPs counters and the FLOPs of the trainer's own passes (docs/algorithms.md,
"FLOPs"; the convention is models/flops.py's).

The sampler reports what it ran (`RolloutBatch.flops`) into `flops_sample`; the trainer
adds each of its passes by kind:

  flops_update     the learner's forward + backward over the rows it ran (padded or packed),
                   and the forward that chooses tokens over several micro-batches
  flops_reference  the KL reference's forward (or DPO/HyPO's π_ref scoring)
  flops_teacher    the distillation teacher's forward on its (privileged) prompt
  flops_recompute  π_old recomputed (`rollout.old_logprobs="recompute"`), and the explore
                   policy's scoring of the rollout on its own prompt (two policies)

`flops_train` is the sum of the four. All are cumulative over the run and checkpointed
with the other counters; evaluation passes are not counted.
"""
from __future__ import annotations

from explore_rl.models.config import ModelConfig
from explore_rl.models.flops import sequence_flops, training_flops
from explore_rl.training.objective_builder import LossSpec
from explore_rl.training.update import RLBatch

TRAINER_PASSES = ("update", "reference", "teacher", "recompute")
COUNTERS = ("flops_sample", "flops_train", *(f"flops_{kind}" for kind in TRAINER_PASSES))


def add_flops(counters: dict, kind: str, flops: float) -> None:
  """Adds `flops` to `flops_<kind>` (`sample` or a `TRAINER_PASSES` kind) and a trainer
  pass's to `flops_train` too."""
  counters[f"flops_{kind}"] = counters.get(f"flops_{kind}", 0.0) + float(flops)
  if kind != "sample":
    counters["flops_train"] = counters.get("flops_train", 0.0) + float(flops)


def update_flops(config: ModelConfig, mb: RLBatch, loss_spec: LossSpec, *, micro_batches: int,
                 teacher_config: ModelConfig | None = None) -> dict[str, float]:
  """FLOPs of one `rl_update` of `loss_spec` on the mini-batch `mb` by kind, as it runs
  them: the policy over the packed rows when `mb` has them and no term reads the full
  logits (else the padded [R, P + M]), plus a forward over the log-prob rows when it
  chooses tokens (`loss_spec.selects`) over several micro-batches; the reference over the
  log-prob rows; the teacher (`teacher_config`, default `config`) over [R, P_t + M]."""
  rows, m = mb.response_tokens.shape
  padded = (rows, mb.prompt_tokens.shape[1] + m)
  logprob_rows = padded if mb.packed_tokens is None else mb.packed_tokens.shape
  needs = loss_spec.needs
  update = training_flops(config, *(padded if "logits" in needs else logprob_rows))
  if loss_spec.selects and micro_batches > 1:
    update += sequence_flops(config, *logprob_rows)
  out = {"update": update}
  if "ref_logprobs" in needs:
    out["reference"] = sequence_flops(config, *logprob_rows)
  if "teacher_logits" in needs:
    prompt = mb.prompt_tokens if mb.teacher_prompt_tokens is None else mb.teacher_prompt_tokens
    out["teacher"] = sequence_flops(teacher_config or config, rows, prompt.shape[1] + m)
  return out


def add_update_flops(counters: dict, *args, **kwargs) -> None:
  """`update_flops(*args, **kwargs)` added to the counters."""
  for kind, flops in update_flops(*args, **kwargs).items():
    add_flops(counters, kind, flops)
