"""The main job: `v2v demo` runs the toolkit end to end on its own synthetic data."""
