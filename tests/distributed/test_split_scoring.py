"""Multi-process scoring (sampling/rollout.py `score`, distributed.py): each of 2 processes
verifies only its half of the prompts, and after the exchange both hold the scores a single
process computes: rewards, statuses and strategy signatures, row by row.

Two subprocesses join on localhost (gloo collectives) and run `_PROGRAM`; the task counts
the rows it scores and gives every row its own reward, status and signature.
"""
import json
import os
import socket
import subprocess
import sys

import numpy as np

from explore_rl import distributed

_PROGRAM = r"""
import json, sys
import jax, numpy as np
from explore_rl import distributed
from explore_rl.models.tokenizer import CharTokenizer
from explore_rl.sampling.rollout import RolloutBatch, score
from explore_rl.tasks.base import MALFORMED, OK, Problem, Score, Task

distributed.initialize(f"localhost:{sys.argv[1]}", 2, int(sys.argv[2]))


class Digits(Task):
  # reward = first digit / 9; signature = the response's length; counts its calls.
  name = "digits_split_test"
  calls = 0
  def sample(self, rng, difficulty=None): raise NotImplementedError
  def correct_responses(self, problem, rng, num): return ["9"] * num
  def mistake(self, problem, rng, response): return "x"
  def parse(self, problem, response): return response[:1] if response[:1].isdigit() else None
  def check(self, problem, parsed): return parsed == "9"
  def parsed_answer(self, problem, parsed): return parsed
  def parsed_signature(self, problem, parsed): return parsed
  def signature(self, problem, response): return ("len", len(response))
  def score(self, problem, response, *, truncated=False):
    Digits.calls += 1
    parsed = self.parse(problem, response)
    if parsed is None:
      return MALFORMED
    return OK if parsed == "9" else Score(int(parsed) / 9, "wrong")


tok = CharTokenizer()
rng = np.random.default_rng(0)
texts = ["".join(rng.choice(list("0123456789ab"), size=rng.integers(1, 6)))
         for _ in range(4 * 3)]
tokens = np.full((12, 8), tok.pad_id, np.int32)
for i, t in enumerate(texts):
  ids = tok.encode(t)
  tokens[i, :len(ids)] = ids
problems = [Problem(prompt=f"p{b}", answer="9", solution="9", difficulty=0.5, meta={})
            for b in range(4)]
z = np.zeros((12, 8), np.float32)
batch = RolloutBatch(np.zeros((4, 2), np.int32), np.ones((4, 2), bool), tokens, tokens != 0,
                     np.zeros(12, np.int32), np.zeros(12, bool), z, z, z, np.float32(0))
out = score(Digits(), problems, batch, tok)
print(json.dumps({"calls": Digits.calls, "rewards": out.rewards.tolist(),
                  "statuses": out.statuses, "signatures": [[list(s) for s in g]
                                                            for g in out.signatures],
                  "responses": out.responses}))
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_one_process_verifies_everything_and_gathers_nothing():
  assert distributed.process_groups(6) == range(6)
  rows = np.arange(6.0).reshape(3, 2)
  assert distributed.allgather_rows(rows) is rows


def test_two_processes_split_the_verification_and_agree(tmp_path):
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  procs = [subprocess.Popen([sys.executable, "-c", _PROGRAM, str(port), str(i)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = []
  try:
    for p in procs:
      outs.append(p.communicate(timeout=240))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
  assert [r["calls"] for r in results] == [6, 6]          # 2 of 4 prompts x 3 samples each
  assert results[0] == {**results[1], "calls": results[0]["calls"]}
  # What one process would have computed, row by row.
  texts = results[0]["responses"]
  want = [int(t[0]) / 9 if t[:1].isdigit() and t[0] != "9" else (1.0 if t[:1] == "9" else 0.0)
          for t in texts]
  np.testing.assert_allclose(np.asarray(results[0]["rewards"]).reshape(-1), want, rtol=1e-6)
  assert [s for g in results[0]["signatures"] for s in g] == [["len", len(t)] for t in texts]
  assert len(set(map(tuple, results[0]["rewards"]))) > 1
