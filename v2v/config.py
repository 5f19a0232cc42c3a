"""Typed configs: YAML files mapped onto dataclass trees, with dotted `key=value` overrides.

Usage::

    @dataclass
    class TrainCfg:
        steps: int = 100
        lr: float = 2e-4

    cfg = load_config("configs/x.yaml", MyRootCfg, overrides=["train.lr=1e-3"])

Rules:
- Every key in YAML or an override must be a field of the dataclass at that level; an unknown
  key raises :class:`V2VError` naming the dotted key and the closest valid key.
- Values are coerced to the annotated type (int, float, bool, str, tuple/list of those,
  Optional[...], nested dataclasses, dict[str, ...]). A field annotated `dict` or `Any` takes
  anything (used for free-form sections such as official-config passthrough).
- Override values are parsed with YAML rules (`a.b=3`, `a.c=[1,2]`, `a.d=null`, `a.e=true`).
"""
from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from typing import Any

import yaml

from v2v.errors import V2VError, unknown_key_message

__all__ = ["load_yaml", "from_dict", "to_dict", "apply_overrides", "load_config", "parse_override"]


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping; a missing file or a non-mapping top level is a V2VError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise V2VError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise V2VError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise V2VError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except V2VError as exc:
                errors.append(str(exc))
        raise V2VError(errors[0] if errors else f"config key '{key}': cannot be null")
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise V2VError(f"config key '{key}': expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=key)
    if tp in (dict,) or origin is dict:
        if not isinstance(value, dict):
            raise V2VError(f"config key '{key}': expected a mapping, got {value!r}")
        if args and len(args) == 2:
            return {k: _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
        return dict(value)
    if tp in (list, tuple) or origin in (list, tuple):
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and origin is not None:
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise V2VError(f"config key '{key}': expected a list, got {value!r}")
        if args:
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                if len(args) != len(value):
                    raise V2VError(f"config key '{key}': expected {len(args)} values, got {len(value)}")
                items = [_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
            else:
                items = [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
        else:
            items = list(value)
        return tuple(items) if (tp is tuple or origin is tuple) else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise V2VError(f"config key '{key}': expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise V2VError(f"config key '{key}': expected an integer, got {value!r}")
        if isinstance(value, int):
            return check_size(key, value)
        if isinstance(value, float) and value.is_integer():
            return check_size(key, int(value))
        if isinstance(value, str):
            try:
                return check_size(key, int(value))
            except ValueError:
                pass
        raise V2VError(f"config key '{key}': expected an integer, got {str(value)[:40]!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise V2VError(f"config key '{key}': expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise V2VError(f"config key '{key}': expected a string, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise V2VError(f"config key '{key}': expected one of {list(args)}, got {value!r}")
        return value
    return value


#: config keys that size tensors (widths, channels, layer and block counts, keypoints, image
#: sizes): refused outside [0, MAX_SIZE] before any model is built (ngf = 2**40 would try to
#: allocate petabytes; a negative count is meaningless)
_SIZE_KEY = re.compile(
    r"(^|_)(ngf|ndf|nef|nf|ch|channels?|width|widths|dim|dims|depth|size|sizes|features?|nc|kp|"
    r"num_\w+|n_\w+|\w+_nc|\w+_ngf|\w+_ndf|\w+_channels|\w+_features|\w+_dim|blocks?|layers?|"
    r"block_expansion|max_features|num_kp|num_channels|latent_dim|style_dim|label_channels)$")
MAX_SIZE = 65536


def check_size(key: str, value: int) -> int:
    """``value`` when ``key`` is not a size-like key or lies in ``[0, MAX_SIZE]``; else V2VError."""
    name = str(key).rsplit(".", 1)[-1].split("[", 1)[0]
    if _SIZE_KEY.search(name) and not 0 <= value <= MAX_SIZE:
        raise V2VError(f"config key '{key}' = {str(value)[:24]} is out of range [0, {MAX_SIZE}] "
                       "(refused before allocating)")
    return value


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass ``cls`` from a mapping, validating keys and coercing values."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise V2VError(f"config section '{prefix or cls.__name__}': expected a mapping, got {data!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in fields:
            raise V2VError(unknown_key_message("config key", key, [f"{prefix}.{n}" if prefix else n for n in fields]))
        kwargs[k] = _coerce(v, hints[k], key)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise V2VError(f"config section '{prefix or cls.__name__}': {exc}") from None


def to_dict(obj) -> Any:
    """Dataclass tree -> plain dict/list (tuples become lists), safe for YAML/JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """'a.b.c=value' -> (['a','b','c'], yaml-parsed value)."""
    if "=" not in text:
        raise V2VError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise V2VError(f"override '{text}': empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _schema_at(cls, parts: list[str], full: str):
    """Validate a dotted key path against the dataclass schema (dict-typed fields accept anything)."""
    tp = cls
    walked = []
    for p in parts:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            non_none = [a for a in args if a is not type(None)]
            tp = non_none[0] if len(non_none) == 1 else tp
        if not _is_dataclass_type(tp):
            return  # free-form dict/Any: anything goes below this level
        names = [f.name for f in dataclasses.fields(tp) if f.init]
        if p not in names:
            pre = ".".join(walked)
            raise V2VError(unknown_key_message("config key", full, [f"{pre}.{n}" if pre else n for n in names]))
        tp = _hints(tp)[p]
        walked.append(p)


def apply_overrides(data: dict, overrides, schema=None) -> dict:
    """Apply dotted overrides to a nested mapping (in a copy). With ``schema`` the keys are checked."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides or ():
        parts, value = parse_override(text)
        if schema is not None:
            _schema_at(schema, parts, ".".join(parts))
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = value
    return out


def load_config(path_or_dict, cls, overrides=None):
    """YAML path (or mapping) + overrides -> instance of dataclass ``cls``."""
    data = load_yaml(path_or_dict) if not isinstance(path_or_dict, dict) else path_or_dict
    data = apply_overrides(data, overrides, schema=cls)
    return from_dict(cls, data)


def save_yaml(data: dict, path: str | os.PathLike) -> None:
    """Atomically write a mapping (or dataclass) as YAML."""
    from v2v.utils import atomic_write

    if dataclasses.is_dataclass(data):
        data = to_dict(data)
    with atomic_write(path, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
