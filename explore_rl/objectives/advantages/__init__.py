"""Advantage estimators: rewards[..., N] of a prompt's N samples -> advantages[..., N].

Group-relative (GRPO family) estimators live in `group.py`; pass@k / max@k-aware
ones (PKPO, pass@k analytic, BoN-aware, grpo_passk) in `passk.py`; diversity-
shaped rewards (DRA, EVOL) in `diversity.py`. Everything is re-exported here so
`explore_rl.objectives.advantages.pkpo` and friends are the public names.
"""
from explore_rl.objectives.advantages.group import dapo_keep_mask, dapo_overlong_shaping, dr_grpo, grpo, overlong_penalty, rloo  # noqa: E501,F401
from explore_rl.objectives.set_rl import set_rl_advantages  # noqa: F401
from explore_rl.objectives.advantages.passk import bon_advantages, grpo_passk, passk_analytic, pkpo  # noqa: E501,F401
from explore_rl.objectives.advantages.diversity import dra_rewards, evol_rewards  # noqa: F401
