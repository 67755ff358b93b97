"""Whose fault a failed sandboxed call is (`Result.fault`).

- `ANSWER`: the call timed out (wall deadline, CPU limit), or the scorer crashed, raised
  or was killed on this input, or its result was unreadable. Hostile or malformed model
  output does this; the response scores 0 and training goes on.
- `INFRASTRUCTURE`: the scorer could not run at all: its module could not be loaded,
  the child could not be confined, the server died, restarted or stopped answering.

A child's own report is a label, not proof: code run by an answer owns its child and can
write any result. Decisions that matter (stopping a run) re-check with trusted input,
`SandboxPool.self_test` (docs/design.md, "Sandboxed scoring").
"""
ANSWER = "answer"
INFRASTRUCTURE = "infrastructure"
