"""Every built-in objective component, registered in one place with its metadata.

Configs select components by name (`config.objective`); unknown names fail with
the valid list. Each entry declares what the trainer and the config checks need to
know, and they read it from here, never from a second list:

- ADVANTAGES:     rewards[B, N] (+ declared context) -> advantages[B, N].
                  `needs`: the fields of the per-group context
                  (`explore_rl.objectives.context.GroupContext`) it takes by keyword; the
                  trainer computes only those (cluster ids need a judge call, embeddings
                  a MiniLM pass). `group_relative`: it compares the samples of one prompt,
                  so it needs rollout.num_samples >= 2.
- REWARD_SHAPERS: rewards[B, N] (+ declared context) -> shaped rewards[B, N]; `needs`.
- POLICY_LOSSES:  (logprobs, old_logprobs, advantages, mask, *, rng, **hparams)
                  -> (per_token_loss[B, T], metrics). `is_correction`: the policy
                  term may weight it by an importance correction (importance.py);
                  `aggregation`: the token aggregation its paper uses (another one is
                  warned about).
- LOSS_TERMS:     the per-token terms summed into the loss (loss_terms.py); `needs`.
- AGGREGATIONS:   per-token loss -> (numerator, denominator)   (aggregation.py)
- SET_FUNCTIONS:  set objectives f(G) on every subset at once   (set_rl.py)
- KL_ESTIMATORS:  k1, k2, k3 per-token KL to the reference      (policy_loss.py)
- IS_CORRECTIONS: importance weights for behaviour-drawn tokens (importance.py)

Adding a component is one function and one decorator, here or in your own file
(docs/design.md, "Adding a component").
"""
from explore_rl.objectives import cispo, entropy_control, policy_loss, reward_shaping, set_rl
from explore_rl.objectives.advantages import gibbs, group, none, passk_aware
from explore_rl.objectives.aggregation import AGGREGATIONS
from explore_rl.objectives.context import CONTEXT_FIELDS
from explore_rl.objectives.importance import IS_CORRECTIONS
from explore_rl.objectives.loss_terms import LOSS_TERMS, POLICY_LOSSES
from explore_rl.objectives.policy_loss import KL_ESTIMATORS
from explore_rl.objectives.set_rl import SET_FUNCTIONS
from explore_rl.registry import Registry

__all__ = ["ADVANTAGES", "AGGREGATIONS", "IS_CORRECTIONS", "KL_ESTIMATORS", "LOSS_TERMS",
           "POLICY_LOSSES", "REWARD_SHAPERS", "SET_FUNCTIONS", "needs"]

ADVANTAGES = Registry("advantage")
REWARD_SHAPERS = Registry("reward shaper")

_ADVANTAGES = [
    # name,           function,                 context fields it takes, group-relative
    ("grpo", group.grpo, ("mask",), True),
    # DAPO (arXiv 2503.14476) keeps GRPO's advantage: its token-mean loss, clip-higher
    # and dynamic sampling are loss and sampler settings.
    ("dapo", group.grpo, ("mask",), True),
    ("dr_grpo", group.dr_grpo, ("mask",), True),
    ("rloo", group.rloo, ("mask",), True),
    ("set_rl", set_rl.set_rl_advantages, ("cluster_ids", "rng"), True),
    ("pkpo", passk_aware.pkpo, (), True),
    ("passk_analytic", passk_aware.passk_analytic, (), True),
    ("bon", passk_aware.bon_advantages, (), True),
    ("grpo_passk", passk_aware.grpo_passk, (), True),
    # zeros: only added terms train (pure self-distillation with objective.distill)
    ("none", none.no_advantages, (), False),
    # RWR fit of the Gibbs policy π_ref·exp(λr)/Z: weights as advantages, with the pg loss
    ("gibbs_rwr", gibbs.gibbs_rwr, ("mask",), True),
]
_REWARD_SHAPERS = [
    ("dra", reward_shaping.dra_rewards, ("embeddings", "mask")),
    ("evol", reward_shaping.evol_rewards, ("answer_ids", "embeddings", "mask")),
    ("dapo_overlong", reward_shaping.dapo_overlong_shaping, ("lengths",)),
]
_POLICY_LOSSES = [
    # name,       function,                       takes an importance correction, aggregation
    ("ppo", policy_loss.ppo_loss, True, None),
    ("pg", policy_loss.pg_loss, True, None),
    # GSPO (arXiv 2507.18071) averages per sequence
    ("gspo", policy_loss.gspo_loss, True, "seq-mean-token-mean"),
    ("clip_cov", entropy_control.clip_cov_policy_loss, False, None),
    ("kl_cov", entropy_control.kl_cov_policy_loss, False, None),
    # CISPO (MiniMax-M1, arXiv 2506.13585) normalises over the batch's tokens
    ("cispo", cispo.cispo_loss, False, "token-mean"),
]

for _name, _fn, _needs, _relative in _ADVANTAGES:
  ADVANTAGES.register(_name, needs=_needs, group_relative=_relative)(_fn)
for _name, _fn, _needs in _REWARD_SHAPERS:
  REWARD_SHAPERS.register(_name, needs=_needs)(_fn)
for _name, _fn, _corrected, _aggregation in _POLICY_LOSSES:
  POLICY_LOSSES.register(_name, is_correction=_corrected, aggregation=_aggregation)(_fn)


def needs(registry: Registry, name: str) -> tuple[str, ...]:
  """The context fields component `name` of `registry` declared (validated names)."""
  fields = registry.info(name).get("needs", ())
  unknown = set(fields) - set(CONTEXT_FIELDS)
  if unknown:
    raise ValueError(f"{registry.kind} {name!r} needs unknown context fields {sorted(unknown)}")
  return tuple(fields)
