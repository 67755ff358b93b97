"""RL steps per second with the sampler running ahead (`rollout.max_staleness`, docs/async.md)
against the synchronous loop, and how much of the time each side sits idle.

Arms, all `configs/grpo.py` on a fresh model (`--preset`, default `small`), 16 prompts x 8
samples per step, on 8 XLA:CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=8):

  sync           max_staleness 0: sample, then train, on all 8 devices
  sync 4         max_staleness 0 on 4 of the 8 (`mesh.num_devices`): the learner's mesh of
                 the 4+4 arms without a sampler, which separates the gain of the overlap
                 from that of the smaller mesh
  k=1 shared     max_staleness 1, the sampler thread time-sharing the 8 devices
  k=1 4+4        max_staleness 1, the sampler on 4 devices, the learner on the other 4
  k=2 4+4        max_staleness 2, the same split

Each arm runs `--warmup` steps (compilation) and then `--steps` timed steps of the trainer's
own step (`RLTrainer.step`: no evaluation, no checkpoint). Printed per arm: steps/s over the
timed steps, and the idle fractions over their wall time:

  sampler idle   1 − (time spent drawing rollouts) / wall
  learner idle   (time the learner waited for a rollout) / wall; in the synchronous loop the
                 learner waits for the whole draw

Times are the host's (each side's call, host-side scoring included), not device traces. On
a 2-core CPU the 8 virtual devices share the same two cores, so an overlap can only fill
what one side leaves idle (Python, scoring, dispatch gaps): the numbers show how much.

  python benchmarks/async.py                   # small, 3 warm-up + 8 timed steps per arm
  python benchmarks/async.py --preset tiny --steps 4
"""
from __future__ import annotations

import argparse
import tempfile
import time

import _common

ARMS = {"sync": (0, 0, 0), "sync 4": (0, 0, 4), "k=1 shared": (1, 0, 0), "k=1 4+4": (1, 4, 0),
        "k=2 4+4": (2, 4, 0)}   # name: (max_staleness, sampler devices, mesh.num_devices)


def run_arm(staleness: int, sampler_devices: int, num_devices: int, *, preset: str,
            warmup: int, steps: int, workdir: str) -> dict:
  from explore_rl.config_files import load_config
  from explore_rl.training.rl import RLTrainer
  config = load_config("grpo", {
      "init_from": "", "model.preset": preset, "total_steps": warmup + steps,
      "eval_every": warmup + steps, "checkpoint_every": warmup + steps,
      "rollout.max_staleness": staleness, "mesh.sampler_devices": sampler_devices,
      "mesh.num_devices": num_devices})
  trainer = RLTrainer(config, workdir, progress=False)
  try:
    for step in range(warmup):
      trainer.step(step)
    t0, rows = time.perf_counter(), []
    for step in range(warmup, warmup + steps):
      rows.append(trainer.step(step))
    wall = time.perf_counter() - t0
  finally:
    trainer.rollouts.close()
    trainer.ckpt.close()
    trainer.run_dir.close()
  waited = sum(r["time_sample"] for r in rows)
  drawing = sum(r.get("time_draw", r["time_sample"]) for r in rows)
  return {"steps/s": steps / wall, "sampler idle": max(0.0, 1 - drawing / wall),
          "learner idle": waited / wall, "step s": wall / steps,
          "staleness": sum(r.get("rollout/staleness_mean", 0.0) for r in rows) / steps}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="small")
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--steps", type=int, default=8)
  parser.add_argument("--arms", default=",".join(ARMS))
  args = parser.parse_args(argv)
  _common.use_cpu_devices(8)
  print(_common.describe_machine())
  results = {}
  for name in args.arms.split(","):
    with tempfile.TemporaryDirectory() as workdir:
      results[name] = run_arm(*ARMS[name], preset=args.preset, warmup=args.warmup,
                              steps=args.steps, workdir=workdir)
    print(f"{name}: {results[name]['steps/s']:.3f} steps/s", flush=True)
  base = results.get("sync", {}).get("steps/s")
  _common.print_table(
      ["arm", "steps/s", "vs sync", "s/step", "sampler idle", "learner idle", "staleness"],
      [[name, f"{r['steps/s']:.3f}", f"{r['steps/s'] / base:.2f}x" if base else "-",
        f"{r['step s']:.2f}", f"{r['sampler idle']:.0%}", f"{r['learner idle']:.0%}",
        f"{r['staleness']:.2f}"] for name, r in results.items()])
  print(f"preset {args.preset}, {args.warmup} warm-up + {args.steps} timed steps per arm; "
        f"load average {_common.load_average()}")


if __name__ == "__main__":
  main()
