"""v2v.compat."""
