"""Per-image fidelity metrics: PSNR and SSIM.

Inputs are images ``B,3,H,W`` (any channel count works) in [0, ``max_val``] (default [0,1]);
both return one value per image (a ``B`` tensor), on the inputs' device.
"""
from __future__ import annotations

import torch

__all__ = ["psnr", "ssim"]


def _check_pair(a: torch.Tensor, b: torch.Tensor, name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() != 4:
        raise ValueError(f"{name}: expected B,C,H,W images, got shape {tuple(a.shape)}")


def psnr(a: torch.Tensor, b: torch.Tensor, max_val: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: ``10 log10(max_val^2 / MSE)``.

    Args:
        a, b: ``B,C,H,W`` images in [0, max_val] (float32 [0,1] by convention).
        max_val: the peak value (1.0 for [0,1] images, 255 for uint8-range images).
    Returns:
        ``B`` float tensor; identical images give ``inf``.
    """
    _check_pair(a, b, "psnr")
    # float32 (not float64) so it runs on every backend (MPS has no float64)
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(max_val**2 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor, max_val: float = 1.0, window_size: int = 11) -> torch.Tensor:
    """Structural similarity per image (Gaussian window 11, sigma 1.5; ``kornia.metrics.ssim``).

    Args:
        a, b: ``B,C,H,W`` images in [0, max_val].
    Returns:
        ``B`` tensor, the mean SSIM map over channels and pixels (1 for identical images).
        kornia pads with zeros at the border ("same" size map), which lowers values slightly
        near edges compared to a "valid" crop.
    """
    import kornia

    _check_pair(a, b, "ssim")
    m = kornia.metrics.ssim(a.float(), b.float(), window_size, max_val=max_val)
    return m.flatten(1).mean(1)
