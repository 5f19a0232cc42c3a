"""One module per system; each registers itself with ``@v2v.registry.register_system``."""
from __future__ import annotations

from v2v.registry import get_system_class

__all__ = ["get_system_class"]
