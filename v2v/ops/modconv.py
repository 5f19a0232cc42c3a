"""StyleGAN2 ops in pure torch: ``upfirdn2d``, FIR blur / up / down sampling, modulated convolution.

Tensors are ``B,C,H,W`` feature maps (any range). FIR kernels are 1-D (separable, made 2-D by an
outer product) or 2-D, normalized to sum 1 by :func:`make_kernel`. Semantics follow the official
StyleGAN2 (``upfirdn2d``: upsample by zero insertion, pad, convolve with the FIR filter,
downsample) and the widely used rosinality port (padding choices of ``Upsample``,
``Downsample``, ``Blur`` and ``ModulatedConv2d``), so weights trained with those load as-is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._check import check_shape

__all__ = [
    "blur",
    "downsample2d",
    "make_kernel",
    "modulated_conv2d",
    "upfirdn2d",
    "upsample2d",
]

DEFAULT_FIR = (1, 3, 3, 1)


def make_kernel(k, device=None, dtype=torch.float32) -> torch.Tensor:
    """FIR kernel -> normalized 2-D tensor ``(kh, kw)`` summing to 1 (1-D input: outer product).

    Args:
        k: 1-D taps (e.g. ``[1, 3, 3, 1]``) or a 2-D kernel.
        device, dtype: of the result.

    Returns:
        ``(kh, kw)`` kernel summing to 1.

    Example:
        >>> make_kernel([1, 1])
        tensor([[0.2500, 0.2500],
                [0.2500, 0.2500]])
    """
    k = torch.as_tensor(k, dtype=dtype, device=device)
    if k.dim() == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up=1, down=1, pad=(0, 0)) -> torch.Tensor:
    """Upsample, FIR-filter, downsample (native torch version of StyleGAN2's ``upfirdn2d``).

    1. insert ``up - 1`` zeros after every pixel (``H -> H * up``);
    2. pad by ``pad`` (``(p0, p1)`` for both axes, or ``(px0, px1, py0, py1)``; negative crops);
    3. convolve (true convolution, i.e. flipped kernel) with the 2-D ``kernel`` ``(kh, kw)``,
       'valid' mode, depthwise;
    4. keep every ``down``-th pixel.

    ``up``/``down`` are ints or ``(x, y)`` pairs. ``x``: ``B,C,H,W``. Output size per axis:
    ``(H * up + p0 + p1 - kh) // down + 1``. The kernel is used as given (not re-normalized).

    Args:
        x: ``B,C,H,W``.
        kernel: ``(kh, kw)`` FIR kernel.
        up, down: integer factors or ``(x, y)`` pairs.
        pad: ``(p0, p1)`` or ``(px0, px1, py0, py1)`` pixels (negative crops).

    Returns:
        ``B,C,H',W'`` (sizes above).

    Example:
        >>> upfirdn2d(torch.ones(1, 1, 4, 4), make_kernel([1, 1]), down=2, pad=(0, 1)).shape
        torch.Size([1, 1, 2, 2])
    """
    check_shape(x, "B,C,H,W", "upfirdn2d: x")
    upx, upy = _pair(up)
    dnx, dny = _pair(down)
    if len(pad) == 2:
        px0, px1, py0, py1 = pad[0], pad[1], pad[0], pad[1]
    else:
        px0, px1, py0, py1 = pad
    b, c, h, w = x.shape
    kernel = kernel.to(device=x.device, dtype=x.dtype)
    kh, kw = kernel.shape
    out = x.reshape(b * c, h, 1, w, 1)
    out = F.pad(out, [0, upx - 1, 0, 0, 0, upy - 1])
    out = out.reshape(b * c, 1, h * upy, w * upx)
    out = F.pad(out, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    out = out[
        :,
        :,
        max(-py0, 0) : out.shape[2] - max(-py1, 0),
        max(-px0, 0) : out.shape[3] - max(-px1, 0),
    ]
    wk = torch.flip(kernel, [0, 1]).view(1, 1, kh, kw)
    out = F.conv2d(out, wk)
    out = out[:, :, ::dny, ::dnx]
    return out.reshape(b, c, out.shape[2], out.shape[3])


def blur(x: torch.Tensor, kernel=DEFAULT_FIR, pad=None, gain: float = 1.0) -> torch.Tensor:
    """FIR blur ``B,C,H,W`` -> same size (default pad ``(k//2, (k-1)//2)``, k-1 in total).

    ``pad`` overrides the padding (see :func:`upfirdn2d`); ``gain`` multiplies the normalized
    kernel (StyleGAN2 uses ``up**2`` after a zero-insertion upsampling).

    Args:
        x: ``B,C,H,W``.
        kernel: FIR taps.
        pad: padding override.
        gain: kernel multiplier.

    Returns:
        ``B,C,H,W`` (with the default padding).

    Example:
        >>> blur(torch.ones(1, 1, 6, 6))[0, 0, 2, 2]     # interior of a constant image is kept
        tensor(1.)
    """
    k = make_kernel(kernel, device=x.device, dtype=x.dtype) * gain
    if pad is None:
        p = k.shape[0] - 1
        pad = ((p + 1) // 2, p // 2)
    return upfirdn2d(x, k, pad=pad)


def upsample2d(x: torch.Tensor, kernel=DEFAULT_FIR, factor: int = 2) -> torch.Tensor:
    """FIR upsampling ``B,C,H,W -> B,C,H*f,W*f`` (StyleGAN2 ``Upsample``; kernel gain ``f**2``).

    Args:
        x: ``B,C,H,W``.
        kernel: FIR taps.
        factor: integer upsampling factor.

    Returns:
        ``B,C,H*f,W*f``.

    Example:
        >>> upsample2d(torch.ones(1, 1, 4, 4))[0, 0, 3:5, 3:5]
        tensor([[1., 1.],
                [1., 1.]])
    """
    k = make_kernel(kernel, device=x.device, dtype=x.dtype) * (factor**2)
    p = k.shape[0] - factor
    return upfirdn2d(x, k, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample2d(x: torch.Tensor, kernel=DEFAULT_FIR, factor: int = 2) -> torch.Tensor:
    """FIR downsampling ``B,C,H,W -> B,C,H/f,W/f`` (StyleGAN2 ``Downsample``).

    Args: as :func:`upsample2d` (``factor`` divides instead). Returns ``B,C,H/f,W/f``.

    Example:
        >>> downsample2d(torch.ones(1, 1, 8, 8)).shape
        torch.Size([1, 1, 4, 4])
    """
    k = make_kernel(kernel, device=x.device, dtype=x.dtype)
    p = k.shape[0] - factor
    return upfirdn2d(x, k, down=factor, pad=((p + 1) // 2, p // 2))


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    style: torch.Tensor,
    demodulate: bool = True,
    up: int = 1,
    down: int = 1,
    padding: int | None = None,
    eps: float = 1e-8,
    blur_kernel=DEFAULT_FIR,
) -> torch.Tensor:
    """StyleGAN2 modulated (and demodulated) convolution as one grouped conv over the batch.

    Args:
        x: ``B,Cin,H,W`` input features.
        weight: ``Cout,Cin,k,k`` convolution weight, already multiplied by any equalized-lr scale.
        style: ``B,Cin`` per-sample input-channel scales (the affine-mapped style).
        demodulate: rescale each output filter to unit norm:
            ``w' = w * s / sqrt(sum_{cin,kh,kw} (w * s)^2 + eps)``.
        up: 2 for a transposed stride-2 conv followed by a FIR blur (gain 4); output ``2H``
            (``k + 1`` taps before blur, as in the official implementation).
        down: 2 for a FIR blur followed by a stride-2 conv; output ``H/2``.
        padding: for ``up == down == 1``; default ``k // 2`` (same size).
        blur_kernel: FIR kernel for up/down (default ``[1, 3, 3, 1]``).

    Returns:
        ``B,Cout,H',W'``. No bias / noise / activation (those belong to the layer).

    Example:
        >>> x, w = torch.rand(2, 4, 8, 8), torch.randn(6, 4, 3, 3)
        >>> modulated_conv2d(x, w, torch.ones(2, 4)).shape, modulated_conv2d(x, w, torch.ones(2, 4), up=2).shape
        (torch.Size([2, 6, 8, 8]), torch.Size([2, 6, 16, 16]))
    """
    check_shape(x, "B,C,H,W", "modulated_conv2d: x")
    check_shape(style, "B,C", "modulated_conv2d: style")
    b, cin, h, w = x.shape
    cout, _, kh, kw = weight.shape
    wt = weight.unsqueeze(0) * style.view(b, 1, cin, 1, 1).to(weight.dtype)
    if demodulate:
        d = torch.rsqrt(wt.pow(2).sum([2, 3, 4]) + eps)
        wt = wt * d.view(b, cout, 1, 1, 1)
    if up > 1 and down > 1:
        raise ValueError("modulated_conv2d: up and down cannot both be > 1")
    if up > 1:
        xin = x.reshape(1, b * cin, h, w)
        wtt = wt.transpose(1, 2).reshape(b * cin, cout, kh, kw)
        out = F.conv_transpose2d(xin, wtt, padding=0, stride=up, groups=b)
        out = out.view(b, cout, out.shape[-2], out.shape[-1])
        k = make_kernel(blur_kernel, device=x.device, dtype=out.dtype) * (up**2)
        p = (k.shape[0] - up) - (kw - 1)
        return upfirdn2d(out, k, pad=((p + 1) // 2 + up - 1, p // 2 + 1))
    if down > 1:
        k = make_kernel(blur_kernel, device=x.device, dtype=x.dtype)
        p = (k.shape[0] - down) + (kw - 1)
        xin = upfirdn2d(x, k, pad=((p + 1) // 2, p // 2))
        hh, ww = xin.shape[-2:]
        out = F.conv2d(
            xin.reshape(1, b * cin, hh, ww), wt.reshape(b * cout, cin, kh, kw), stride=down, groups=b
        )
        return out.view(b, cout, out.shape[-2], out.shape[-1])
    pad = kh // 2 if padding is None else padding
    out = F.conv2d(x.reshape(1, b * cin, h, w), wt.reshape(b * cout, cin, kh, kw), padding=pad, groups=b)
    return out.view(b, cout, out.shape[-2], out.shape[-1])
