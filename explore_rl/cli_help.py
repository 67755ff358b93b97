"""`explore-rl --help` and `explore-rl <command> --help`, answered before absl parses.

absl's own `--help` prints a bare usage line and exits 1; these list the commands, and
for each command its own flags (meaning and default, read from the absl flag
definitions in `cli.py`), the `--config.key=value` override syntax and an example.
No command, or an unknown one, prints the list and exits 2 like every user error.
"""
from __future__ import annotations

import sys
import textwrap
from typing import NamedTuple


class Command(NamedTuple):
  summary: str
  flags: tuple[str, ...]
  example: str


_RUN = ("workdir", "num_prompts", "num_samples", "difficulty", "temperature", "seed",
        "compile_cache")
COMMANDS = {
    "train": Command(
        "train a policy (SFT, RL, two-policy, preference) from a config file",
        ("config", "workdir", "allow_method_change", "compile_cache", "distributed",
         "coordinator_address", "num_processes", "process_id"),
        "explore-rl train --config configs/grpo.py:tiny --workdir runs/try "
        "--config.total_steps=3"),
    "eval": Command("pass@k, diversity and entropy of a run's checkpoint on held-out "
                    "prompts (writes eval.json)", _RUN,
                    "explore-rl eval --workdir runs/demo/grpo --num_samples 16"),
    "sample": Command("print a run's samples on held-out prompts with their rewards", _RUN,
                      "explore-rl sample --workdir runs/demo/grpo --num_prompts 2"),
    "generate": Command(
        "print a model's completions of a prompt (through its chat template)",
        ("init_from", "prompt", "max_new_tokens", "temperature", "num_samples", "seed",
         "compile_cache"),
        'explore-rl generate --init_from=smollm2-135m-instruct --prompt "What is 7 + 5?"'),
}
EXAMPLES = ('explore-rl generate --init_from=smollm2-135m-instruct --prompt "What is 7 + 5?"',
            "explore-rl train --config configs/grpo.py:tiny --workdir runs/try")
_OVERRIDES = ("Override any key of the config file with --config.key=value (type-checked; "
              "nested keys with dots, e.g. --config.rollout.num_samples=8). New keys only "
              "inside a *_kwargs dict or model_overrides.")
_HELP = ("--help", "-h", "--helpshort", "-?")


def usage() -> str:
  width = max(map(len, COMMANDS))
  lines = ["usage: explore-rl <command> [--flag=value ...]", "", "commands:"]
  lines += [f"  {name:<{width}}  {c.summary}" for name, c in COMMANDS.items()]
  lines += ["", "examples:"] + [f"  {e}" for e in EXAMPLES]
  lines += ["", "explore-rl <command> --help lists that command's flags."]
  return "\n".join(lines)


def command_help(command: str) -> str:
  from absl import flags
  c = COMMANDS[command]
  lines = [f"usage: explore-rl {command} [--flag=value ...]", "", c.summary, "", "flags:"]
  for name in c.flags:
    flag = flags.FLAGS[name]
    default = "" if flag.default is None else f" (default: {flag.default})"
    lines.append(f"  --{name}")
    lines += textwrap.wrap(flag.help + default, 88, initial_indent=" " * 6,
                           subsequent_indent=" " * 6)
  if "config" in c.flags:
    lines += [""] + textwrap.wrap(_OVERRIDES, 90)
  lines += ["", "example:", f"  {c.example}"]
  return "\n".join(lines)


def handle(argv) -> None:
  """Print help and exit when `argv` asks for it (0) or names no known command (2);
  return otherwise."""
  args = argv[1:]
  command = next((a for a in args if a in COMMANDS), None)
  wants_help = any(a in _HELP for a in args)
  if command is not None:
    if wants_help:
      print(command_help(command))
      sys.exit(0)
    return
  if wants_help:
    print(usage())
    sys.exit(0)
  positional = next((a for a in args if not a.startswith("-")), None)
  fault = f"unknown command {positional!r}" if positional else "no command given"
  print(f"explore-rl: error: {fault}\n\n{usage()}", file=sys.stderr)
  sys.exit(2)
