"""modconv.py (StyleGAN2 ops) and correlation.py."""

import pytest
import torch
import torch.nn.functional as F

from v2v.ops.correlation import correlation_displacements, local_correlation
from v2v.ops.modconv import blur, downsample2d, make_kernel, modulated_conv2d, upfirdn2d, upsample2d


def test_upfirdn2d_known_values():
    x = torch.arange(4.0).view(1, 1, 2, 2)
    one = torch.ones(1, 1)
    up = upfirdn2d(x, one, up=2)
    assert torch.equal(up[0, 0], torch.tensor([[0.0, 0, 1, 0], [0, 0, 0, 0], [2, 0, 3, 0], [0, 0, 0, 0]]))
    y = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(upfirdn2d(y, one, down=2)[0, 0], torch.tensor([[0.0, 2], [8, 10]]))
    # FIR is a true convolution (kernel flipped): an impulse reproduces the kernel
    imp = torch.zeros(1, 1, 3, 3)
    imp[0, 0, 1, 1] = 1
    k = torch.arange(1.0, 10.0).view(3, 3)
    assert torch.equal(upfirdn2d(imp, k, pad=(1, 1))[0, 0], k)
    # negative padding crops
    assert torch.equal(upfirdn2d(y, one, pad=(-1, -1))[0, 0], y[0, 0, 1:-1, 1:-1])


def test_fir_resampling():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 8)
    # a [1,1] kernel makes these nearest upsampling and 2x2 average pooling
    assert torch.allclose(upsample2d(x, [1, 1]), x.repeat_interleave(2, 2).repeat_interleave(2, 3), atol=1e-6)
    assert torch.allclose(downsample2d(x, [1, 1]), F.avg_pool2d(x, 2), atol=1e-6)
    c = torch.full((1, 2, 8, 8), 0.5)
    assert torch.allclose(upsample2d(c)[:, :, 2:-2, 2:-2], torch.full((1, 2, 12, 12), 0.5))
    assert torch.allclose(downsample2d(c)[:, :, 1:-1, 1:-1], torch.full((1, 2, 2, 2), 0.5))
    assert torch.allclose(blur(c)[:, :, 2:-2, 2:-2], torch.full((1, 2, 4, 4), 0.5))
    assert torch.allclose(make_kernel([1, 3, 3, 1]).sum(), torch.tensor(1.0))
    assert upsample2d(x).shape == (2, 3, 12, 16) and downsample2d(x).shape == (2, 3, 3, 4)


def test_fir_resampling_is_pixel_centre_aligned():
    # a linear ramp is reproduced exactly in the interior, with output pixel k at input
    # coordinate (k + 0.5) * scale - 0.5: no half-pixel shift (up, down, and inside modconv)
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    up_expected = torch.tensor([(k + 0.5) / 2 - 0.5 for k in range(4, 12)])
    assert torch.allclose(upsample2d(ramp)[0, 0, 8, 4:12], up_expected, atol=1e-5)
    assert torch.allclose(downsample2d(ramp)[0, 0, 2, 1:3], torch.tensor([2.5, 4.5]), atol=1e-5)
    box = torch.ones(1, 1, 3, 3) / 9
    y = modulated_conv2d(ramp, box, torch.ones(1, 1), demodulate=False, up=2)
    assert torch.allclose(y[0, 0, 8, 4:12], up_expected, atol=1e-5)
    y = modulated_conv2d(ramp, box, torch.ones(1, 1), demodulate=False, down=2)
    assert torch.allclose(y[0, 0, 2, 1:3], torch.tensor([2.5, 4.5]), atol=1e-5)


def _modulated_weight(weight, s, demodulate):
    w = weight * s.view(1, -1, 1, 1)
    if demodulate:
        w = w / torch.sqrt(w.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
    return w


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_per_sample_conv(demodulate):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 8, 8)
    weight = torch.randn(5, 4, 3, 3)
    style = torch.randn(3, 4)
    out = modulated_conv2d(x, weight, style, demodulate=demodulate)
    ref = torch.cat(
        [F.conv2d(x[i : i + 1], _modulated_weight(weight, style[i], demodulate), padding=1) for i in range(3)]
    )
    assert (out - ref).abs().max() < 1e-5
    # up: transposed stride-2 conv then FIR blur (gain 4)
    out = modulated_conv2d(x, weight, style, demodulate=demodulate, up=2)
    refs = []
    for i in range(3):
        w = _modulated_weight(weight, style[i], demodulate)
        y = F.conv_transpose2d(x[i : i + 1], w.transpose(0, 1), stride=2)
        refs.append(upfirdn2d(y, make_kernel([1, 3, 3, 1]) * 4, pad=(1, 1)))
    assert out.shape == (3, 5, 16, 16)
    assert (out - torch.cat(refs)).abs().max() < 1e-5
    # down: FIR blur then stride-2 conv
    out = modulated_conv2d(x, weight, style, demodulate=demodulate, down=2)
    refs = [
        F.conv2d(
            upfirdn2d(x[i : i + 1], make_kernel([1, 3, 3, 1]), pad=(2, 2)),
            _modulated_weight(weight, style[i], demodulate),
            stride=2,
        )
        for i in range(3)
    ]
    assert out.shape == (3, 5, 4, 4)
    assert (out - torch.cat(refs)).abs().max() < 1e-5


def test_demodulated_filters_have_unit_norm():
    torch.manual_seed(1)
    weight = torch.randn(6, 4, 1, 1)
    style = torch.rand(2, 4) + 0.5
    x = torch.zeros(2, 4, 1, 1)
    x[:, 2] = 1.0  # picks the (cout, cin=2) entries of the demodulated 1x1 weight
    col = modulated_conv2d(x, weight, style, padding=0)[:, :, 0, 0]
    w = weight[:, :, 0, 0].unsqueeze(0) * style.unsqueeze(1)
    expected = w[:, :, 2] / w.norm(dim=2)
    assert torch.allclose(col, expected, atol=1e-6)


def test_local_correlation_brute_force():
    torch.manual_seed(0)
    f1 = torch.randn(2, 5, 6, 7)
    f2 = torch.randn(2, 5, 6, 7)
    d = 2
    out = local_correlation(f1, f2, max_displacement=d)
    disps = correlation_displacements(d)
    assert out.shape == (2, 25, 6, 7) and disps[12] == (0, 0)
    assert torch.allclose(out[:, 12], (f1 * f2).mean(1), atol=1e-6)
    n = disps.index((1, -2))
    ref = torch.zeros(2, 6, 7)
    for b in range(2):
        for i in range(6):
            for j in range(7):
                ii, jj = i + 1, j - 2
                if 0 <= ii < 6 and 0 <= jj < 7:
                    ref[b, i, j] = sum(float(f1[b, c, i, j] * f2[b, c, ii, jj]) for c in range(5)) / 5
    assert torch.allclose(out[:, n], ref, atol=1e-5)
    # stride 2 keeps every other displacement
    s = local_correlation(f1, f2, max_displacement=2, stride=2)
    assert s.shape == (2, 9, 6, 7)
    assert torch.allclose(s[:, 0], out[:, disps.index((-2, -2))])
