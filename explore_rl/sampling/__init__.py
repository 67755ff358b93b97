"""explore_rl.sampling."""
