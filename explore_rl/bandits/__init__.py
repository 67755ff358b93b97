"""explore_rl.bandits."""
