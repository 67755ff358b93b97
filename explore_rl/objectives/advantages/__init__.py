"""Advantage estimators: rewards[..., N] of a prompt's N samples -> advantages[..., N].

Group-relative (GRPO family) estimators live in `group.py`; pass@k / max@k-aware
ones (PKPO, pass@k analytic, BoN-aware, grpo_passk) in `passk_aware.py`; set RL's
marginal set advantages in `explore_rl.objectives.set_rl`; the Gibbs policy's
reward-weighted regression weights (`gibbs_rwr`) in `gibbs.py`; all-zero advantages
(`none`, for runs trained by added loss terms only) in `none.py`. They are re-exported
here, so `explore_rl.objectives.advantages.pkpo` and friends are the public names.
Reward shapers (DRA, EVOL, DAPO's overlong penalty) are in `reward_shaping.py`.
"""
from explore_rl.objectives.advantages.gibbs import gibbs_rwr
from explore_rl.objectives.advantages.group import dr_grpo, grpo, rloo
from explore_rl.objectives.advantages.none import no_advantages
from explore_rl.objectives.advantages.passk_aware import (bon_advantages, grpo_passk, passk_analytic,
                                                    pkpo)
from explore_rl.objectives.set_rl import set_rl_advantages

__all__ = ["bon_advantages", "dr_grpo", "gibbs_rwr", "grpo", "grpo_passk", "no_advantages",
           "passk_analytic", "pkpo", "rloo", "set_rl_advantages"]
