"""Training: options, trainer, step engine, distributed helpers, data sets, caches and batch sources (llinet-train)."""
