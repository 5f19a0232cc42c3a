"""v2v.losses."""
