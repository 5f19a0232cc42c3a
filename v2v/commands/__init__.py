"""CLI command modules; each defines ``register(cli)`` (see v2v.cli)."""
