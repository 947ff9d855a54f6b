"""Evaluation: embedding a split, the metrics, reports and plots (llinet-eval and the evaluate() API)."""
