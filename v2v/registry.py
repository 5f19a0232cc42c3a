"""The system registry: a system registers itself where it is defined.

A model file declares its system once::

    from v2v.registry import register_system

    @register_system("style-dvdgan", compat="v2v.compat.style_dvdgan",
                     commands="v2v.commands.style_dvdgan")
    class StyleDVDGANSystem(System):
        ...

- ``name`` is the CLI and YAML name (hyphens). The underscore spelling is accepted everywhere
  (``style_dvdgan``), and so are the ``aliases``.
- ``compat`` (optional) is the module with the pure official-format functions and the parity
  runner (see ``docs/sections/adding_a_system.md`` for what it must define).
- ``commands`` (optional) is the module whose ``register(cli)`` adds the system's CLI verbs
  beyond the generic ones (``convert``, ``parity``, ``train``).

Discovery needs no hand-kept list: :func:`discover` imports every module of ``v2v.models``
(``pkgutil``), which runs the decorators.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

from v2v.errors import V2VError, unknown_key_message

__all__ = ["SystemSpec", "all_systems", "discover", "get_spec", "get_system_class", "register_system"]


@dataclass(frozen=True)
class SystemSpec:
    """What the registry knows of one system."""

    name: str
    cls: type
    compat: str | None = None
    commands: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def compat_module(self):
        """The imported compat module (V2VError when the system has none)."""
        if not self.compat:
            raise V2VError(f"system '{self.name}' has no official-format support (no compat module)")
        return importlib.import_module(self.compat)


_REGISTRY: dict[str, SystemSpec] = {}
_ALIASES: dict[str, str] = {}
_DISCOVERED = False


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def register_system(name: str, *, compat: str | None = None, commands: str | None = None,
                    aliases: tuple[str, ...] = ()):
    """Class decorator: register a :class:`v2v.models.base.System` subclass under ``name``."""

    def deco(cls):
        key = _norm(name)
        prev = _REGISTRY.get(key)
        if prev is not None and prev.cls.__qualname__ != cls.__qualname__:
            raise RuntimeError(f"system name '{key}' registered twice ({prev.cls.__qualname__}, {cls.__qualname__})")
        spec = SystemSpec(key, cls, compat, commands, tuple(_norm(a) for a in aliases))
        _REGISTRY[key] = spec
        for a in spec.aliases:
            _ALIASES[a] = key
        cls.system_name = key
        return cls

    return deco


def discover() -> None:
    """Import every ``v2v.models`` module once so that their decorators run."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import v2v.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{pkg.__name__}.{info.name}")
    _DISCOVERED = True


def all_systems() -> dict[str, SystemSpec]:
    """name -> spec for every registered system, sorted by name."""
    discover()
    return dict(sorted(_REGISTRY.items()))


def get_spec(name: str) -> SystemSpec:
    """The spec registered under ``name`` (hyphen or underscore spelling, or an alias)."""
    key = _norm(name)
    if key not in _REGISTRY and key not in _ALIASES:
        discover()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise V2VError(unknown_key_message("system", name, _REGISTRY))
    return _REGISTRY[key]


def get_system_class(name: str):
    """The System class registered under ``name``."""
    return get_spec(name).cls
