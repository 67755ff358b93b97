"""Every built-in objective component, registered in one place with what it needs.

Configs select components by name (`config.objective`); unknown names fail with
the valid list. Each advantage estimator and reward shaper declares the fields
of the per-group context (`explore_rl.objectives.context.GroupContext`) it takes
by keyword; the trainer computes only those (cluster ids need a judge call,
embeddings a MiniLM pass). Adding a component is one function in its module and
one line here (docs/design.md, "Adding an objective").

- ADVANTAGES:     rewards[B, N] (+ declared context) -> advantages[B, N]
- REWARD_SHAPERS: rewards[B, N] (+ declared context) -> shaped rewards[B, N]
- POLICY_LOSSES:  (logprobs, old_logprobs, advantages, mask, *, rng, **hparams)
                  -> (per_token_loss[B, T], metrics)
- AGGREGATIONS:   per-token loss -> (numerator, denominator)   (aggregation.py)
- SET_FUNCTIONS:  set objectives f(G) on every subset at once   (set_rl.py)
- KL_ESTIMATORS:  k1, k2, k3 per-token KL to the reference      (policy_loss.py)
"""
from explore_rl.objectives import distillation, entropy_control, policy_loss, reward_shaping, set_rl
from explore_rl.objectives.advantages import gibbs, group, passk
from explore_rl.objectives.aggregation import AGGREGATIONS
from explore_rl.objectives.context import CONTEXT_FIELDS
from explore_rl.objectives.policy_loss import KL_ESTIMATORS
from explore_rl.objectives.set_rl import SET_FUNCTIONS
from explore_rl.registry import Registry

__all__ = ["ADVANTAGES", "AGGREGATIONS", "KL_ESTIMATORS", "POLICY_LOSSES", "REWARD_SHAPERS",
           "SET_FUNCTIONS", "needs"]

ADVANTAGES = Registry("advantage")
REWARD_SHAPERS = Registry("reward shaper")
POLICY_LOSSES = Registry("policy loss")

_ADVANTAGES = [
    # name,            function,                    context fields it takes
    ("grpo", group.grpo, ("mask",)),
    # DAPO (arXiv 2503.14476) keeps GRPO's advantage: its token-mean loss, clip-higher
    # and dynamic sampling are loss and sampler settings.
    ("dapo", group.grpo, ("mask",)),
    ("dr_grpo", group.dr_grpo, ("mask",)),
    ("rloo", group.rloo, ("mask",)),
    ("set_rl", set_rl.set_rl_advantages, ("cluster_ids", "rng")),
    ("pkpo", passk.pkpo, ()),
    ("passk_analytic", passk.passk_analytic, ()),
    ("bon", passk.bon_advantages, ()),
    ("grpo_passk", passk.grpo_passk, ()),
    # zeros: only added terms train (pure self-distillation with objective.distill)
    ("none", distillation.no_advantages, ()),
    # RWR fit of the Gibbs policy π_ref·exp(λr)/Z: weights as advantages, with the pg loss
    ("gibbs_rwr", gibbs.gibbs_rwr, ("mask",)),
]
_REWARD_SHAPERS = [
    ("dra", reward_shaping.dra_rewards, ("embeddings", "mask")),
    ("evol", reward_shaping.evol_rewards, ("answer_ids", "embeddings", "mask")),
    ("dapo_overlong", reward_shaping.dapo_overlong_shaping, ("lengths",)),
]
_POLICY_LOSSES = [
    ("ppo", policy_loss.ppo_loss),
    ("pg", policy_loss.pg_loss),
    ("gspo", policy_loss.gspo_loss),
    ("clip_cov", entropy_control.clip_cov_policy_loss),
    ("kl_cov", entropy_control.kl_cov_policy_loss),
]

for _name, _fn, _needs in _ADVANTAGES:
  ADVANTAGES.register(_name, needs=_needs)(_fn)
for _name, _fn, _needs in _REWARD_SHAPERS:
  REWARD_SHAPERS.register(_name, needs=_needs)(_fn)
for _name, _fn in _POLICY_LOSSES:
  POLICY_LOSSES.register(_name)(_fn)


def needs(registry: Registry, name: str) -> tuple[str, ...]:
  """The context fields component `name` of `registry` declared (validated names)."""
  fields = registry.info(name).get("needs", ())
  unknown = set(fields) - set(CONTEXT_FIELDS)
  if unknown:
    raise ValueError(f"{registry.kind} {name!r} needs unknown context fields {sorted(unknown)}")
  return tuple(fields)
