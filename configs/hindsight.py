"""Hindsight proposals (HOPE-style; docs/algorithms.md, "Hindsight proposer"): per prompt,
4 first drafts of the policy are scored by the verifier, then the policy reads each
(worst first) with its outcome ("attempt: ... -> wrong, reward 0.00. a better solution:")
and proposes 4 alternatives. Proposals train the policy off-policy by GRPO with truncated
per-token importance weights min(π(y_t | x, y_<t) / μ(y_t | hindsight context), 2)
(`rollout.sampler_kwargs.correction="is"`, `objective.is_correction="token_tis"`: biased,
the proposals' prefixes stay the proposer's; a sequence weight would all but silence the
proposals: from the prior at step 0, `seq_tis` keeps an effective sample size of 0.52,
about the drafts' half of the rows; docs/algorithms.md, "Importance corrections");
`correction="filter"` instead clones only
successful proposals; `proposer="teacher"` with `teacher_from=<workdir>` proposes with a
frozen checkpoint.

Command:  explore-rl train --config configs/hindsight.py --workdir runs/hindsight
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: about 1.5x GRPO per step (two decodes of N/2 samples,
          one scoring pass of the proposer's outcome, one forward pass for the trained
          policy's log-probs on the proposals).
Expected: every step logs `hindsight_proposals` (64 = 16 prompts x 4), `hindsight_success_rate`,
          `hindsight_draft_success_rate`, `hindsight_improved_frac`, `hindsight_token_share`,
          `mismatch/kl`, `mismatch/is_weight_mean`, `mismatch/ess`,
          `mismatch/truncated_frac`. Measured (experiments/exploration_diagnostics.py:
          tiny-preset partition prior, 30 steps, 3 seeds; results/exploration_diagnostics/
          table.md): a prior never trained on hindsight contexts proposes badly: proposal
          success 0.02-0.03 vs drafts 0.34-0.36, 0.1-0.5% of proposals beat their draft,
          proposals 36-37% of the trained tokens, IS weight mean 0.90 (0.9% capped);
          held-out pass@1 0.352 ± 0.073, coverage 0.92 ± 0.04 (GRPO 0.358, 0.94).
"""
import ml_collections

from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.rollout.sampler = "hindsight"
  c.rollout.sampler_kwargs = ml_collections.ConfigDict(dict(
      proposal_frac=0.5, correction="is", proposer="policy"))
  c.objective.advantage = "grpo"
  c.objective.is_correction = "token_tis"
  return c
