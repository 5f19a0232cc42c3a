"""Normalization-layer factory shared by every network in v2v.

``get_norm_layer(name, channels)`` builds one normalization module for feature maps
``B,C,H,W`` (or ``B,C,T,H,W`` with ``dim=3``). Names:

- ``"instance"``: ``InstanceNorm{2,3}d(affine=False)`` (the pix2pixHD / vid2vid default);
  ``"instance_affine"``: the same with a learned scale and shift (FOMM's discriminator).
- ``"batch"``: ``BatchNorm{2,3}d(affine=True)``; ``"sync_batch"`` / ``"syncbatch"`` are aliases
  (wrap the whole model with ``nn.SyncBatchNorm.convert_sync_batchnorm`` for DDP; the
  state-dict layout is the same).
- ``"none"`` (or ``None``): ``nn.Identity``.

Unknown names raise :class:`v2v.errors.V2VError` (they usually come from a config file).
"""
from __future__ import annotations

from torch import nn

from v2v.errors import V2VError, unknown_key_message

__all__ = ["NORM_NAMES", "canonical_norm_name", "get_norm_layer"]

_ALIASES = {
    "instance": "instance",
    "in": "instance",
    "instance_affine": "instance_affine",
    "batch": "batch",
    "bn": "batch",
    "sync_batch": "batch",
    "syncbatch": "batch",
    "sync-batch": "batch",
    "none": "none",
    "identity": "none",
}
NORM_NAMES = tuple(sorted(_ALIASES))


def canonical_norm_name(name: str | None) -> str:
    """Map an accepted norm name (or alias) to one of ``instance, instance_affine, batch, none``.

    Args:
        name: a name or alias (case-insensitive), or None.

    Returns:
        the canonical name.

    Example:
        >>> canonical_norm_name("sync_batch"), canonical_norm_name(None)
        ('batch', 'none')
    """
    if name is None:
        return "none"
    key = str(name).lower()
    if key not in _ALIASES:
        raise V2VError(unknown_key_message("norm layer", name, NORM_NAMES))
    return _ALIASES[key]


def get_norm_layer(name: str | None, channels: int, dim: int = 2, *,
                   track_running_stats: bool | None = None, eps: float = 1e-5,
                   momentum: float = 0.1) -> nn.Module:
    """Build a normalization layer over ``channels`` channels.

    Args:
        name: ``instance``, ``instance_affine``, ``batch`` (aliases ``sync_batch``, ``bn``),
            ``none``.
        channels: number of channels C of the ``B,C,...`` input.
        dim: 1, 2 or 3 spatial dimensions (``BatchNorm1d/2d/3d`` etc.).
        track_running_stats: ``None`` keeps the torch default of each type (False for
            instance norm, True for batch norm).
        eps, momentum: passed through.

    Returns:
        the module (``nn.Identity`` for ``none``).

    Example:
        >>> type(get_norm_layer("instance", 8)).__name__, type(get_norm_layer("none", 8)).__name__
        ('InstanceNorm2d', 'Identity')
    """
    kind = canonical_norm_name(name)
    if kind == "none":
        return nn.Identity()
    if dim not in (1, 2, 3):
        raise ValueError(f"dim must be 1, 2 or 3, got {dim}")
    if kind in ("instance", "instance_affine"):
        cls = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dim]
        trs = False if track_running_stats is None else track_running_stats
        return cls(channels, eps=eps, momentum=momentum, affine=kind == "instance_affine",
                   track_running_stats=trs)
    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim]
    trs = True if track_running_stats is None else track_running_stats
    return cls(channels, eps=eps, momentum=momentum, affine=True, track_running_stats=trs)
