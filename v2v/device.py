"""Device selection. Nothing in v2v calls `.cuda()`: every entry point takes a `device`."""
from __future__ import annotations

import torch

from v2v.errors import V2VError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> cuda if available, else cpu. 'cuda', 'cuda:1', 'cpu', 'mps' are accepted."""
    if isinstance(name, torch.device):
        return name
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise V2VError(f"invalid --device '{name}': {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise V2VError(f"--device {name} requested but CUDA is not available (use --device cpu or auto)")
    return dev
