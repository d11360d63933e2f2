"""Training: the loop (fit / epoch / evaluate), metrics, optimizers and schedules."""
