"""explore_rl.objectives."""
