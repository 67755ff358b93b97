"""Hindsight proposals (HOPE-style): a proposer reads a scored attempt and writes a better one.

docs/algorithms.md, "Hindsight proposer". For each prompt the sampler

  1. draws N_d first drafts from the drawing policy on the plain prompt (as
     `IndependentSampler`: one jitted `generate`);
  2. scores them with the verifier (on the host: the sampler holds the run's task,
     `takes_task`), so the proposer can read each draft's outcome;
  3. builds N_p hindsight contexts, one per proposal, proposal k reading draft
     order[k mod N_d] with the drafts ordered worst reward first (stable), i.e. failed
     drafts are revisited first:

        [BOS] prefix  draft (without its EOS)  " -> <result>."  instruction  prompt

     where <result> is "correct" or "<status>, reward r" (`STATUSES`, two decimals);
     the layout puts the plain prompt last, so a model fine-tuned on prompt -> response
     continues it with a response. The contexts are left-padded to one static length
     (1 + prefix + M + the longest result + instruction + P tokens);
  4. decodes one proposal per context with the proposer (`proposer="policy"`: the
     trained policy; `"teacher"`: `policies.teacher`, a frozen proposer checkpoint from
     `teacher_from`), reusing the jitted `generate` with the context as the prompt;
  5. scores the proposals (for the metrics, and for `correction="filter"`).

The returned `RolloutBatch` has N = N_d + N_p samples per prompt: rows b*N + j are
drafts for j < N_d and proposals after them; N_p = round(proposal_frac·N), clipped to
[1, N − 1] (so N ≥ 2). Log-probs (docs/design.md, "The rollout"):

  drafts     behaviour = policy log-probs of the drawing policy, as `independent`;
  proposals  behaviour μ = the proposer's log-probs in its hindsight context (after
             temperature/top-k/p), policy = the trained policy on the plain prompt
             (`Sampler.policy_scores`, one forward pass).

How proposals train the policy (`correction`):

  "is"      importance-corrected policy gradient: every proposal is kept and weighted
            by `objective.is_correction` of π_old(y_t|x, y_<t) / μ(y_t|hindsight
            context) (configs/hindsight.py: `token_tis`, min(·, 2) per token);
  "filter"  filtered behaviour cloning of successful counterfactuals: proposals whose
            reward is below 1 are dropped from the loss (their mask rows are all False;
            they still count in the group's rewards, as the verifier scored them), and the
            successful ones get behaviour log-probs equal to the policy's, so no
            importance weight applies: each is cloned with its group advantage (positive
            whenever its group also holds a failure), or with `gibbs_rwr`'s weight.

Metrics (`metrics()`, logged by the trainer at every step, summed over the calls since
the last one): `hindsight_proposals` (count), `hindsight_success_rate` (proposals with
reward >= 1), `hindsight_draft_success_rate`, `hindsight_improved_frac` (proposals whose
reward beats the draft they read), `hindsight_token_share` (the proposals' share of the
trained response tokens, i.e. of the unmasked tokens; dynamic sampling may drop groups
after this count). Cost: the verifier scores drafts and proposals here and the trainer
scores the whole batch again; the decode is two `generate` calls and one scoring pass
(`RolloutBatch.flops` counts the three).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.distributed import to_host
from explore_rl.models import sharding
from explore_rl.models.tokenizer import pad_left
from explore_rl.sampling.generate import generate
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import RolloutBatch
from explore_rl.sampling.samplers import IndependentSampler, Policies, Sampler
from explore_rl.tasks.base import STATUSES, Problem, Task
from explore_rl.tasks.registry import score_batch

__all__ = ["HindsightSampler", "result_text"]

CORRECTIONS = ("is", "filter")
PROPOSERS = ("policy", "teacher")


def result_text(reward: float, status: str) -> str:
  """The verifier's outcome as the proposer reads it."""
  return "correct" if reward >= 1.0 else f"{status}, reward {reward:.2f}"


class HindsightSampler(Sampler):
  """`rollout.sampler="hindsight"`: first drafts plus proposals written in hindsight.

  sampler_kwargs: proposal_frac (0.5), correction ("is" | "filter"), proposer
  ("policy" | "teacher"), prefix, instruction (the context's wording). See the module
  docstring for the layout and the log-probs.
  """
  takes_task = True

  def __init__(self, *, sampling: SamplingConfig, prompt_len: int, task: Task | None = None,
               proposal_frac: float = 0.5, correction: str = "is", proposer: str = "policy",
               prefix: str = "attempt: ", instruction: str = " a better solution: "):
    super().__init__(sampling=sampling, prompt_len=prompt_len)
    if correction not in CORRECTIONS:
      raise ValueError(f"correction={correction!r}; valid: {', '.join(CORRECTIONS)}")
    if proposer not in PROPOSERS:
      raise ValueError(f"proposer={proposer!r}; valid: {', '.join(PROPOSERS)}")
    if not 0.0 < proposal_frac < 1.0:
      raise ValueError(f"proposal_frac must be in (0, 1), got {proposal_frac}")
    self.task, self.correction, self.proposer = task, correction, proposer
    self.proposal_frac = float(proposal_frac)
    self.prefix, self.instruction = prefix, instruction
    self.drafts = IndependentSampler(sampling=sampling, prompt_len=prompt_len)
    self._stats = np.zeros(5)   # proposals, correct, drafts, correct drafts, improved
    self._tokens = np.zeros(2)  # proposal tokens, all tokens (unmasked)

  def split(self, num_samples: int) -> tuple[int, int]:
    """(N_d drafts, N_p proposals) per prompt."""
    if num_samples < 2:
      raise ValueError(f"the hindsight sampler needs rollout.num_samples >= 2 (a draft and a "
                       f"proposal), got {num_samples}")
    n_prop = int(np.clip(round(self.proposal_frac * num_samples), 1, num_samples - 1))
    return num_samples - n_prop, n_prop

  def context_len(self, tokenizer) -> int:
    """The static length of a hindsight context (left-padded; 4 tokens of slack for
    tokenizers whose digits merge differently)."""
    longest = max(len(tokenizer.encode(f" -> {result_text(0.0, s)}.")) for s in STATUSES)
    return (1 + len(tokenizer.encode(self.prefix)) + self.sampling.max_new_tokens + longest
            + len(tokenizer.encode(self.instruction)) + self.prompt_len + 4)

  def contexts(self, tokenizer, problems: Sequence[Problem], draft_tokens: np.ndarray,
               draft_lengths: np.ndarray, draft_truncated: np.ndarray, rewards: np.ndarray,
               statuses: Sequence[str], num_proposals: int):
    """Hindsight contexts, proposal-major per prompt (row b*N_p + k): (int32 [B*N_p, C],
    bool [B*N_p, C]) NumPy, and the draft index each proposal read (int [B, N_p]).

    draft_tokens [B*N_d, M], draft_lengths/truncated [B*N_d], rewards [B, N_d], statuses
    [B*N_d] (the verifier's).
    """
    b, n_d = rewards.shape
    read = np.empty((b, num_proposals), np.int64)
    seqs = []
    for i, problem in enumerate(problems):
      order = np.argsort(rewards[i], kind="stable")
      prompt = tokenizer.encode(problem.prompt)
      for k in range(num_proposals):
        j = int(order[k % n_d])
        read[i, k] = j
        row = i * n_d + j
        keep = int(draft_lengths[row]) - (0 if draft_truncated[row] else 1)   # drop the EOS
        draft = [int(t) for t in draft_tokens[row, :max(keep, 0)]]
        result = f" -> {result_text(float(rewards[i, j]), statuses[row])}."
        seqs.append([tokenizer.bos_id] * (tokenizer.bos_id is not None)
                    + tokenizer.encode(self.prefix) + draft + tokenizer.encode(result)
                    + tokenizer.encode(self.instruction) + prompt)
    tokens, valid = pad_left(seqs, tokenizer.pad_id, self.context_len(tokenizer))
    return tokens, valid, read

  def _score(self, problems, tokenizer, tokens, truncated, n):
    host_tokens, host_truncated = to_host((tokens, truncated))
    responses = [tokenizer.decode(t) for t in host_tokens]
    per_row = [p for p in problems for _ in range(n)]
    results = score_batch(per_row, responses, host_truncated.tolist(), default_task=self.task)
    rewards = np.asarray([r.reward for r in results], np.float32).reshape(len(problems), n)
    return rewards, [r.status for r in results]

  def __call__(self, policies: Policies, problems: Sequence[Problem], rng: jax.Array, *,
               num_samples: int) -> RolloutBatch:
    n_d, n_p = self.split(num_samples)
    tokenizer = policies.trained.tokenizer
    proposer = policies.trained
    if self.proposer == "teacher":
      if policies.teacher is None:
        raise ValueError("proposer='teacher' needs a frozen proposer checkpoint: set "
                         "config.teacher_from")
      proposer = policies.teacher
    k_draft, k_prop = jax.random.split(rng)
    drafts = self.drafts(policies, problems, k_draft, num_samples=n_d)
    d_rewards, d_statuses = self._score(problems, tokenizer, drafts.tokens, drafts.truncated, n_d)
    d_host = to_host(drafts)
    ctx, ctx_valid, read = self.contexts(tokenizer, problems, d_host.tokens, d_host.lengths,
                                         d_host.truncated, d_rewards, d_statuses, n_p)
    out = generate(proposer.graphdef, proposer.params,
                   *sharding.shard_batch(proposer.params, ctx, ctx_valid), k_prop,
                   num_samples=1, config=self.sampling, eos_id=tokenizer.eos_id,
                   pad_id=tokenizer.pad_id)
    policy_lp, entropy, score_flops = self.policy_scores(
        policies, drafts.prompt_tokens, drafts.prompt_valid, out.tokens, out.mask)
    p_rewards, _ = self._score(problems, tokenizer, out.tokens, out.truncated, n_p)
    mask, behaviour = out.mask, out.sample_logprobs
    if self.correction == "filter":
      keep = jnp.asarray(p_rewards.reshape(-1) >= 1.0)[:, None]
      mask = mask & keep
      behaviour = jnp.where(mask, policy_lp, 0.0)
      policy_lp, entropy = jnp.where(mask, policy_lp, 0.0), jnp.where(mask, entropy, 0.0)

    b = len(problems)
    merge = lambda d, p: jnp.concatenate(
        [d.reshape(b, n_d, *d.shape[1:]), p.reshape(b, n_p, *p.shape[1:])],
        axis=1).reshape(b * num_samples, *d.shape[1:])
    batch = RolloutBatch(
        drafts.prompt_tokens, drafts.prompt_valid, merge(drafts.tokens, out.tokens),
        merge(drafts.mask, mask), merge(drafts.lengths, out.lengths),
        merge(drafts.truncated, out.truncated),
        merge(drafts.behaviour_logprobs, behaviour), merge(drafts.policy_logprobs, policy_lp),
        merge(drafts.entropy, entropy), drafts.flops + out.flops + score_flops)

    read_rewards = np.take_along_axis(d_rewards, read, axis=1)
    prop_tokens = float(to_host(mask.sum()))
    self._stats += [p_rewards.size, (p_rewards >= 1.0).sum(), d_rewards.size,
                    (d_rewards >= 1.0).sum(), (p_rewards > read_rewards).sum()]
    self._tokens += [prop_tokens, prop_tokens + float(d_host.mask.sum())]
    return batch

  def metrics(self) -> dict:
    """Proposal counts and rates since the last call (then reset)."""
    proposals, correct, drafts, correct_drafts, improved = self._stats
    if not proposals:
      return {}
    out = {"hindsight_proposals": int(proposals),
           "hindsight_success_rate": float(correct / proposals),
           "hindsight_draft_success_rate": float(correct_drafts / max(drafts, 1)),
           "hindsight_improved_frac": float(improved / proposals),
           "hindsight_token_share": float(self._tokens[0] / max(self._tokens[1], 1.0))}
    self._stats[:], self._tokens[:] = 0, 0
    return out
