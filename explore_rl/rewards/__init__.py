"""explore_rl.rewards."""
