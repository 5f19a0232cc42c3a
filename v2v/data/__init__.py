"""v2v.data."""
