"""v2v.metrics."""
