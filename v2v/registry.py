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

Discovery needs no hand-kept list: :func:`discover` reads the decorations of every module of
``v2v.models`` (``pkgutil`` + ``ast``, without importing them, so the CLI starts without torch);
the class is imported when first used (``SystemSpec.cls``).
"""
from __future__ import annotations

import ast
import importlib
import os
import pkgutil
from dataclasses import dataclass, field

from v2v.errors import V2VError, unknown_key_message

__all__ = ["SystemSpec", "all_systems", "discover", "get_spec", "get_system_class", "register_system"]


@dataclass(frozen=True)
class SystemSpec:
    """What the registry knows of one system (the class itself is imported on first use)."""

    name: str
    module: str
    class_name: str
    compat: str | None = None
    commands: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cls(self) -> type:
        """The System class (imports its model module)."""
        return getattr(importlib.import_module(self.module), self.class_name)

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


def _add(spec: SystemSpec) -> None:
    prev = _REGISTRY.get(spec.name)
    if prev is not None and (prev.module, prev.class_name) != (spec.module, spec.class_name):
        raise RuntimeError(f"system name '{spec.name}' registered twice ({prev.module}.{prev.class_name}, "
                           f"{spec.module}.{spec.class_name})")
    _REGISTRY[spec.name] = spec
    for a in spec.aliases:
        _ALIASES[a] = spec.name


def register_system(name: str, *, compat: str | None = None, commands: str | None = None,
                    aliases: tuple[str, ...] = ()):
    """Class decorator: register a :class:`v2v.models.base.System` subclass under ``name``."""

    def deco(cls):
        _add(SystemSpec(_norm(name), cls.__module__, cls.__qualname__, compat, commands,
                        tuple(_norm(a) for a in aliases)))
        cls.system_name = _norm(name)
        return cls

    return deco


def _static_specs(path: str, module: str) -> list[SystemSpec] | None:
    """The ``@register_system(...)`` decorations of a model file, read without importing it
    (so building the CLI does not import torch). None when an argument is not a literal."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for d in node.decorator_list:
            if isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", "")) == "register_system":
                try:
                    args = [ast.literal_eval(a) for a in d.args]
                    kw = {k.arg: ast.literal_eval(k.value) for k in d.keywords}
                except ValueError:
                    return None
                out.append(SystemSpec(_norm(args[0] if args else kw["name"]), module, node.name, kw.get("compat"),
                                      kw.get("commands"), tuple(_norm(a) for a in kw.get("aliases", ()))))
    return out


def discover() -> None:
    """Find every system of ``v2v.models`` once: each model file's decorators are read statically
    (no import); a file whose decoration is not literal is imported so that it runs."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import v2v.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = f"{pkg.__name__}.{info.name}"
        path = os.path.join(pkg.__path__[0], f"{info.name}.py")
        specs = _static_specs(path, module) if os.path.isfile(path) else None
        if specs is None:
            importlib.import_module(module)
            continue
        for spec in specs:
            _add(spec)
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
