"""Checkpoints: model weights in safetensors, trainer state in a ``weights_only``-loadable ``.pt``.

Layout of a training run's ``out_dir/checkpoints/``::

    step_00000100.safetensors   # system.state_dict() (+ EMA generator weights under "ema.")
    step_00000100.state.pt      # optimizers, step, RNG states, data position (tensors/primitives only)

The state file is written *after* the weights file, each atomically (temp file + ``os.replace``),
so a checkpoint is complete exactly when its ``.state.pt`` exists; :func:`find_latest` only
returns complete ones. A process killed mid-write leaves at most a stray hidden temp file.

Public helpers used by the inference CLIs and model code:

- :func:`save_weights(module, path, metadata)` writes ``module.state_dict()`` as safetensors.
- :func:`load_weights(module, path, strict=True)` loads it back, raising :class:`V2VError` that
  names the first missing / unexpected / shape-mismatched keys when the file does not fit.
  ``ema=True`` loads the EMA copy of the generator weights when the file has one, and
  ``prefix="generator."`` loads only that sub-tree into a sub-module.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import torch
from torch import nn

from v2v.errors import V2VError
from v2v.utils import atomic_path

__all__ = [
    "EMA_PREFIX",
    "FORMAT",
    "check_state_dict",
    "checkpoint_paths",
    "find_latest",
    "load_state",
    "load_system",
    "load_weights",
    "prune_checkpoints",
    "read_metadata",
    "read_weights",
    "resolve_resume",
    "save_state",
    "save_weights",
]

FORMAT = "v2v-weights-1"
STATE_FORMAT = "v2v-trainer-state-1"
EMA_PREFIX = "ema."
_STEP_RE = re.compile(r"^step_(\d{8})\.state\.pt$")


# ----------------------------------------------------------------------------------- weights


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
    return f"{path} is not a v2v weights file (expected safetensors){kind}: {type(exc).__name__}: {exc}"


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
    ema_sd = {k[len(EMA_PREFIX) :]: v for k, v in tensors.items() if k.startswith(EMA_PREFIX)}
    sd = {k: v for k, v in tensors.items() if not k.startswith(EMA_PREFIX)}
    if ema:
        if not ema_sd:
            raise V2VError(f"{path} has no EMA weights ('{EMA_PREFIX}*' keys); load without ema=True / --ema")
        sd.update(ema_sd)
    if prefix:
        sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        if not sd:
            raise V2VError(f"{path} has no keys under prefix '{prefix}'")
    expected = module.state_dict()
    check_state_dict(expected, sd, path, strict=strict)
    with torch.no_grad():
        module.load_state_dict({k: v for k, v in sd.items() if k in expected}, strict=False)
    return meta


def load_system(
    path: str | os.PathLike, ema: bool = False, device: str | torch.device = "cpu", strict: bool = True
):
    """Rebuild the system a ``v2v train`` checkpoint was made with and load its weights.

    The system name and the experiment config come from the file's metadata (written by the
    trainer), so an inference command needs nothing but the checkpoint. ``ema=True`` puts the
    EMA generator weights in place of the raw ones. Returns ``(system in eval mode, experiment
    config)``. A file without that metadata (e.g. a converted official checkpoint) is a
    V2VError: build the system from its config and call :func:`load_weights` instead.
    """
    from v2v.config import from_dict
    from v2v.models import get_system_class
    from v2v.train.config import make_experiment_config

    path = os.fspath(path)
    meta = read_metadata(path)
    if "config" not in meta or "system" not in meta:
        raise V2VError(
            f"{path} has no training config in its metadata (not written by `v2v train`); "
            f"build the model from its config and load the weights with load_weights"
        )
    system_cls = get_system_class(meta["system"])
    try:
        raw = json.loads(meta["config"])
    except json.JSONDecodeError as exc:
        raise V2VError(f"{path}: unreadable config metadata: {exc}") from None
    cfg = from_dict(make_experiment_config(system_cls), raw)
    system = system_cls.from_config(cfg.model)
    load_weights(system, path, strict=strict, ema=ema)
    return system.to(device).eval(), cfg


# ----------------------------------------------------------------------------- trainer state


def checkpoint_paths(ckpt_dir: str | os.PathLike, step: int) -> tuple[str, str]:
    """(weights path, state path) for ``step`` in ``ckpt_dir``."""
    d = os.fspath(ckpt_dir)
    return os.path.join(d, f"step_{step:08d}.safetensors"), os.path.join(d, f"step_{step:08d}.state.pt")


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[int]:
    """Steps of the complete checkpoints (both files present) in ``ckpt_dir``, ascending."""
    d = os.fspath(ckpt_dir)
    if not os.path.isdir(d):
        return []
    steps = []
    for name in os.listdir(d):
        m = _STEP_RE.match(name)
        if m and os.path.isfile(os.path.join(d, f"step_{m.group(1)}.safetensors")):
            steps.append(int(m.group(1)))
    return sorted(steps)


def find_latest(ckpt_dir: str | os.PathLike) -> tuple[str, str] | None:
    """Paths of the newest complete checkpoint in ``ckpt_dir``, or None."""
    steps = list_checkpoints(ckpt_dir)
    return checkpoint_paths(ckpt_dir, steps[-1]) if steps else None


def resolve_resume(spec: str, out_dir: str | os.PathLike) -> tuple[str, str] | None:
    """``--resume`` value -> (weights, state) paths.

    ``"latest"`` -> newest in ``out_dir/checkpoints`` (None when there is none yet); a directory
    -> newest inside it (or in its ``checkpoints/``); a ``.safetensors`` or ``.state.pt`` file ->
    that checkpoint. A named path that does not exist is a V2VError.
    """
    if spec in (None, "", "latest"):
        return find_latest(os.path.join(os.fspath(out_dir), "checkpoints"))
    spec = os.fspath(spec)
    if os.path.isdir(spec):
        for d in (spec, os.path.join(spec, "checkpoints")):
            hit = find_latest(d)
            if hit:
                return hit
        raise V2VError(
            f"--resume {spec}: no complete checkpoint (step_*.safetensors + step_*.state.pt) in it"
        )
    if spec.endswith(".state.pt"):
        w, s = spec[: -len(".state.pt")] + ".safetensors", spec
    elif spec.endswith(".safetensors"):
        w, s = spec, spec[: -len(".safetensors")] + ".state.pt"
    else:
        raise V2VError(
            f"--resume {spec}: expected a directory, a .safetensors or a .state.pt checkpoint file"
        )
    for p in (w, s):
        if not os.path.isfile(p):
            raise V2VError(
                f"--resume {spec}: {p} not found (a checkpoint is a .safetensors + .state.pt pair)"
            )
    return w, s


def save_state(state: dict, path: str | os.PathLike) -> None:
    """Atomically ``torch.save`` a trainer-state dict (tensors, primitives, lists, dicts only)."""
    state = dict(state)
    state["format"] = STATE_FORMAT
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Load a trainer-state file with ``weights_only=True``; V2VError if it is not ours."""
    path = os.fspath(path)
    _check_exists(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a user-file problem
        raise V2VError(
            f"{path} is not a v2v trainer state file: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise V2VError(f"{path} is not a v2v trainer state file (format {got!r}, expected {STATE_FORMAT!r})")
    return state


def prune_checkpoints(ckpt_dir: str | os.PathLike, keep_last: int | None) -> list[int]:
    """Delete all but the newest ``keep_last`` complete checkpoints; returns the removed steps."""
    if not keep_last or keep_last <= 0:
        return []
    steps = list_checkpoints(ckpt_dir)
    removed = steps[:-keep_last]
    for s in removed:
        for p in reversed(checkpoint_paths(ckpt_dir, s)):  # state first: the pair stops counting at once
            try:
                os.remove(p)
            except FileNotFoundError:
                pass
    return removed
