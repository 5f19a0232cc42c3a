"""One-line input checks for ops (in the manner of kornia's ``KORNIA_CHECK_SHAPE``).

``check_shape(x, "B,2,H,W", "flow")`` raises ``ValueError`` with one line naming the argument,
the expected layout and the shape it got. Letters match any size (the same letter need not mean
the same size); digits must match exactly; a leading ``*`` allows any number of leading dims.
"""
from __future__ import annotations

import torch

__all__ = ["check_same_shape", "check_shape"]


def check_shape(x: torch.Tensor, layout: str, name: str = "input") -> None:
    """Raise ``ValueError`` unless ``x`` is a tensor laid out as ``layout`` (e.g. ``"B,C,H,W"``).

    >>> check_shape(torch.zeros(1, 2, 4, 4), "B,2,H,W", "flow")
    >>> check_shape(torch.zeros(1, 3, 4, 4), "B,2,H,W", "flow")
    Traceback (most recent call last):
    ...
    ValueError: flow: expected shape B,2,H,W, got (1, 3, 4, 4)
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a tensor of shape {layout}, got {type(x).__name__}")
    dims = [d.strip() for d in layout.split(",")]
    lead = dims[0] == "*"
    if lead:
        dims = dims[1:]
    shape = tuple(x.shape)
    ok = len(shape) >= len(dims) if lead else len(shape) == len(dims)
    if ok:
        tail = shape[len(shape) - len(dims):]
        ok = all(not d.isdigit() or int(d) == s for d, s in zip(dims, tail))
    if not ok:
        raise ValueError(f"{name}: expected shape {layout}, got {shape}")


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str = "inputs") -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape.

    >>> check_same_shape(torch.zeros(2, 3), torch.zeros(2, 3))
    """
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{names}: shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
