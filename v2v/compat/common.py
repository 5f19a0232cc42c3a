"""Reading official checkpoint files, shared by every system's compat module.

Official files are read with ``torch.load(map_location="cpu", weights_only=True)`` only: nothing
is unpickled beyond tensors and plain containers, legacy (torch 1.0, non-zip) and zip
serializations both work, and storages saved on ``cuda:0`` land on the CPU.
"""
from __future__ import annotations

import os

import torch

from v2v.errors import V2VError

__all__ = ["official_state_dict", "torch_load_official"]


def torch_load_official(path: str | os.PathLike, what: str = "checkpoint"):
    """Load an official file on CPU with ``weights_only=True``; V2VError when missing or unreadable."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise V2VError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for foreign files
        raise V2VError(f"{path}: cannot read as a torch checkpoint ({type(exc).__name__}: {exc})") from None


def official_state_dict(path: str | os.PathLike, what: str = "checkpoint",
                        require_tensors: bool = True) -> dict:
    """An official ``save_network``-style state dict: unwraps ``{"state_dict": ...}``, strips ``module.``.

    With ``require_tensors`` every value must be a tensor (a plain network state dict).
    """
    path = os.fspath(path)
    sd = torch_load_official(path, what)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or (require_tensors and not all(torch.is_tensor(v) for v in sd.values())):
        raise V2VError(f"{path}: expected a state dict of tensors (official save_network format), "
                       f"got {type(sd).__name__}")
    return {k.removeprefix("module."): v for k, v in sd.items()}
