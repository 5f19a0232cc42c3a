"""v2v.train."""
