"""explore_rl.training."""
