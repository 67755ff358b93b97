"""explore_rl.eval."""
