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
from v2v.weights_io import (  # noqa: F401 - re-exported for the trainer
    _check_exists,
    EMA_PREFIX,
    FORMAT,
    check_state_dict,
    load_weights,
    read_metadata,
    read_weights,
    save_weights,
)

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

STATE_FORMAT = "v2v-trainer-state-1"
_STEP_RE = re.compile(r"^step_(\d{8})\.state\.pt$")


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
