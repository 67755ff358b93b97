"""The task protocol shared by every world (task family)."""

# A response's strategy signature when it has no meaningful strategy (empty,
# unparseable, repeated junk). Judges map it to the reserved cluster id -1,
# which set objectives do not count as a distinct strategy.
DEGENERATE = "degenerate"
DEGENERATE_ID = -1
