"""explore_rl.models."""
