"""Label-map utilities: one-hot encoding and instance boundary maps (pix2pixHD).

Label maps are integer ``B,H,W`` tensors of class / instance ids (v2v convention); one-hot
maps are float ``B,C,H,W``.
"""

from __future__ import annotations

import torch

__all__ = ["instance_edges", "one_hot"]


def one_hot(labels: torch.Tensor, num_classes: int, dtype=torch.float32) -> torch.Tensor:
    """Integer ids ``B,H,W`` (``B,1,H,W`` accepted) -> one-hot ``B,C,H,W`` float (0/1).

    Raises ``ValueError`` naming the offending id when an id is negative or ``>= num_classes``.
    (Ops are internal: readers at the edges turn this into a V2VError naming the file.)

    Args:
        labels: integer ids ``B,H,W`` (or ``B,1,H,W``; floats are rounded).
        num_classes: number of channels C.
        dtype: of the result.

    Returns:
        ``B,C,H,W`` with exactly one 1 per pixel.

    Example:
        >>> one_hot(torch.tensor([[[0, 2]]]), 3)[0, :, 0, 1]
        tensor([0., 0., 1.])
    """
    if labels.dim() == 4 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.dim() != 3:
        raise ValueError(f"one_hot: labels must be B,H,W integer ids, got shape {tuple(labels.shape)}")
    if labels.is_floating_point():
        labels = labels.round()
    labels = labels.long()
    if labels.numel():
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            bad = hi if hi >= num_classes else lo
            raise ValueError(
                f"one_hot: label id {bad} out of range for num_classes={num_classes} "
                f"(ids must be in [0, {num_classes - 1}]; max id found {hi}, min id {lo})"
            )
    b, h, w = labels.shape
    out = torch.zeros(b, num_classes, h, w, dtype=dtype, device=labels.device)
    out.scatter_(1, labels.unsqueeze(1), 1.0)
    return out


def instance_edges(inst: torch.Tensor) -> torch.Tensor:
    """Instance boundary map, exactly pix2pixHD's ``get_edges``.

    ``inst``: integer instance ids ``B,H,W`` (or ``B,1,H,W``). Returns float ``B,1,H,W`` with 1
    where a pixel differs from its left/right/up/down neighbour (both sides of a boundary are
    marked), 0 elsewhere.

    Args:
        inst: integer instance ids ``B,H,W`` or ``B,1,H,W``.

    Returns:
        ``B,1,H,W`` float in {0, 1}.

    Example:
        >>> instance_edges(torch.tensor([[[1, 1, 2]]]))[0, 0]
        tensor([[0., 1., 1.]])
    """
    if inst.dim() == 3:
        inst = inst.unsqueeze(1)
    if inst.dim() != 4 or inst.shape[1] != 1:
        raise ValueError(f"instance_edges: inst must be B,H,W (or B,1,H,W), got {tuple(inst.shape)}")
    t = inst
    edge = torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    dx = t[:, :, :, 1:] != t[:, :, :, :-1]
    dy = t[:, :, 1:, :] != t[:, :, :-1, :]
    edge[:, :, :, 1:] |= dx
    edge[:, :, :, :-1] |= dx
    edge[:, :, 1:, :] |= dy
    edge[:, :, :-1, :] |= dy
    return edge.float()
