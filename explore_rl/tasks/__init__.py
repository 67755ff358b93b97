"""explore_rl.tasks."""
