"""Weights I/O: v2v's safetensors files (weights + string metadata), below every other layer.

Inference, compat, models and the trainer all read and write weights through this module, so
nothing outside ``v2v.train`` imports the trainer.

- :func:`save_weights(module, path, metadata)` writes ``module.state_dict()`` as safetensors.
- :func:`load_weights(module, path, strict=True)` loads it back, raising :class:`V2VError` that
  names the first missing / unexpected / shape-mismatched keys when the file does not fit.
  ``ema=True`` loads the EMA copy of the generator weights when the file has one, and
  ``prefix="generator."`` loads only that sub-tree into a sub-module.
- :func:`check_state_dict(expected, got, path)` is the one strictness check every loader uses.
"""

from __future__ import annotations

import json
import os

import torch
from torch import nn

from v2v.errors import V2VError
from v2v.utils import atomic_path

__all__ = [
    "EMA_PREFIX",
    "FORMAT",
    "check_state_dict",
    "load_weights",
    "read_metadata",
    "read_weights",
    "save_weights",
    "select_weights",
]

FORMAT = "v2v-weights-1"
EMA_PREFIX = "ema."


def save_weights(
    module_or_state: nn.Module | dict, path: str | os.PathLike, metadata: dict | None = None
) -> None:
    """Atomically write ``module.state_dict()`` (or a ready state dict) to a safetensors file.

    ``metadata`` values are converted to strings (non-strings as JSON); ``format`` is set to
    :data:`FORMAT` so :func:`load_weights` can tell our files from foreign ones. Tensors are
    stored on CPU, contiguous and unshared (safetensors refuses aliased storage).
    """
    from safetensors.torch import save_file

    sd = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    tensors = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise V2VError(f"save_weights: state entry '{k}' is a {type(v).__name__}, not a tensor")
        tensors[k] = v.detach().to("cpu").contiguous().clone()
    meta = {"format": FORMAT}
    for k, v in (metadata or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file (V2VError when the file is not safetensors)."""
    from safetensors import safe_open

    path = os.fspath(path)
    _check_exists(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for foreign files
        raise V2VError(_not_ours_message(path, exc)) from None


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read all tensors (on CPU) and metadata of a safetensors file; V2VError if it is not one."""
    from safetensors import safe_open

    path = os.fspath(path)
    _check_exists(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as exc:  # noqa: BLE001 - same as above
        raise V2VError(_not_ours_message(path, exc)) from None
    return tensors, meta


def _check_exists(path: str) -> None:
    if not os.path.isfile(path):
        raise V2VError(f"checkpoint not found: {path}")


def _not_ours_message(path: str, exc: Exception) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    kind = ""
    if head[:2] == b"PK" or head[:1] == b"\x80":
        kind = " (it looks like a torch.save pickle: an official checkpoint? convert it with `v2v convert <system>`)"
    from v2v.errors import clean_text

    # the library's own text can be long, carry the file's bytes or escape codes: keep a short, clean gist
    why = clean_text(str(exc), 120)
    if "weights_only" in why:
        why = ""
    return f"{path} is not a v2v weights file (expected safetensors){kind}" + (f": {why}" if why else "")


def _fmt_shape(t) -> str:
    return "(" + ",".join(str(s) for s in t) + ")"


def check_state_dict(
    expected: dict[str, torch.Tensor],
    got: dict[str, torch.Tensor],
    path: str = "checkpoint",
    strict: bool = True,
    limit: int = 5,
) -> None:
    """Raise V2VError listing the first missing / unexpected / shape-mismatched keys.

    ``expected`` is the module's state dict, ``got`` the file's. Shape mismatches always fail;
    missing and unexpected keys fail only with ``strict``.
    """
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [k for k in expected if k in got and tuple(expected[k].shape) != tuple(got[k].shape)]
    parts = []
    if shapes:
        items = [
            f"{k}: file {_fmt_shape(got[k].shape)} vs model {_fmt_shape(expected[k].shape)}"
            for k in shapes[:limit]
        ]
        more = f" (+{len(shapes) - limit} more)" if len(shapes) > limit else ""
        parts.append(f"shape mismatch {len(shapes)}: " + "; ".join(items) + more)
    if strict and missing:
        items = [f"{k} {_fmt_shape(expected[k].shape)}" for k in missing[:limit]]
        more = f" (+{len(missing) - limit} more)" if len(missing) > limit else ""
        parts.append(f"missing {len(missing)}: " + ", ".join(items) + more)
    if strict and unexpected:
        items = [f"{k} {_fmt_shape(got[k].shape)}" for k in unexpected[:limit]]
        more = f" (+{len(unexpected) - limit} more)" if len(unexpected) > limit else ""
        parts.append(f"unexpected {len(unexpected)}: " + ", ".join(items) + more)
    if parts:
        raise V2VError(f"{path} does not match the model (different config?): " + " | ".join(parts))


def select_weights(tensors: dict[str, torch.Tensor], path: str, ema: bool = False) -> dict[str, torch.Tensor]:
    """The state dict a file's tensors stand for: the raw weights, or with ``ema`` the EMA copies
    (``"ema." + key``) in place of the raw ones (V2VError naming ``path`` when it has none)."""
    ema_sd = {k[len(EMA_PREFIX) :]: v for k, v in tensors.items() if k.startswith(EMA_PREFIX)}
    sd = {k: v for k, v in tensors.items() if not k.startswith(EMA_PREFIX)}
    if ema:
        if not ema_sd:
            raise V2VError(f"{path} has no EMA weights ('{EMA_PREFIX}*' keys); load without ema=True / --ema")
        sd.update(ema_sd)
    return sd


def load_weights(
    module: nn.Module, path: str | os.PathLike, strict: bool = True, prefix: str = "", ema: bool = False
) -> dict[str, str]:
    """Load a v2v safetensors file into ``module`` (in place); returns the file's metadata.

    - ``prefix``: only keys starting with it are used, with the prefix stripped (load the
      ``"generator."`` part of a training checkpoint into a bare generator).
    - ``ema``: where the file holds an EMA copy (``"ema." + key``), use it instead of the raw
      weight; without ``ema`` the EMA entries are ignored.
    - ``strict``: missing/unexpected keys are errors; shape mismatches always are.

    Errors (:class:`V2VError`): missing file, a file that is not safetensors (e.g. an official
    ``.pth``: convert it first), or keys/shapes that do not match, listing the first few.
    Tensors are copied into the module's existing parameters (their device and dtype kept).
    """
    path = os.fspath(path)
    tensors, meta = read_weights(path)
    sd = select_weights(tensors, path, ema)
    if prefix:
        sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        if not sd:
            raise V2VError(f"{path} has no keys under prefix '{prefix}'")
    expected = module.state_dict()
    check_state_dict(expected, sd, path, strict=strict)
    with torch.no_grad():
        module.load_state_dict({k: v for k, v in sd.items() if k in expected}, strict=False)
    return meta


