"""v2v.ops."""
