"""Residual blocks, self-attention, norm factory: values against explicit formulas."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.nn.attention import SelfAttention2d
from v2v.nn.norms import get_norm_layer
from v2v.nn.resblocks import ResBlock, ResnetBlock


@pytest.mark.parametrize("resample", [None, "up", "down"])
def test_resblock_matches_formula(resample):
    torch.manual_seed(0)
    blk = ResBlock(4, 6, resample, norm="batch", act="relu").eval()
    for bn in (blk.norm0, blk.norm1):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 4, 8, 8)
    up = (lambda t: F.interpolate(t, scale_factor=2, mode="nearest")) if resample == "up" else (lambda t: t)
    down = (lambda t: F.avg_pool2d(t, 2)) if resample == "down" else (lambda t: t)
    with torch.no_grad():
        h = blk.conv0(up(F.relu(blk.norm0(x))))
        h = down(blk.conv1(F.relu(blk.norm1(h))))
        want = h + down(blk.conv_sc(up(x)))
        got = blk(x)
    torch.testing.assert_close(got, want)
    side = {None: 8, "up": 16, "down": 4}[resample]
    assert got.shape == (2, 6, side, side)


def test_resblock_identity_shortcut_and_first_and_3d():
    torch.manual_seed(1)
    blk = ResBlock(5, 5)
    assert blk.conv_sc is None
    with torch.no_grad():
        blk.conv1.weight.zero_()
        blk.conv1.bias.zero_()
    x = torch.randn(1, 5, 6, 6)
    torch.testing.assert_close(blk(x), x)  # residual branch zero -> identity
    first = ResBlock(3, 4, "down", first=True)
    with torch.no_grad():
        want = F.avg_pool2d(first.conv1(F.relu(first.conv0(x[:, :3]))), 2) + first.conv_sc(F.avg_pool2d(x[:, :3], 2))
        torch.testing.assert_close(first(x[:, :3]), want)
    b3 = ResBlock(2, 3, "down", dim=3, spectral=True)
    v = torch.randn(1, 2, 4, 8, 8)
    b3.eval()
    with torch.no_grad():
        h = F.avg_pool3d(b3.conv1(F.relu(b3.conv0(F.relu(v)))), 2)
        torch.testing.assert_close(b3(v), h + F.avg_pool3d(b3.conv_sc(v), 2))
    assert "conv0.parametrizations.weight.original" in b3.state_dict()


def test_resnet_block_reflect():
    torch.manual_seed(2)
    blk = ResnetBlock(3, norm="instance")
    x = torch.randn(1, 3, 7, 7)
    pad = nn.ReflectionPad2d(1)
    with torch.no_grad():
        c0, c1 = blk.conv_block[1], blk.conv_block[5]
        h = F.relu(F.instance_norm(F.conv2d(pad(x), c0.weight, c0.bias)))
        want = x + F.instance_norm(F.conv2d(pad(h), c1.weight, c1.bias))
        torch.testing.assert_close(blk(x), want)


def test_self_attention_formula():
    torch.manual_seed(3)
    att = SelfAttention2d(16)
    x = torch.randn(2, 16, 3, 5)
    torch.testing.assert_close(att(x), x)  # gamma = 0 at init
    with torch.no_grad():
        att.gamma.fill_(0.7)
        q = att.query(x).flatten(2)
        k = att.key(x).flatten(2)
        v = att.value(x).flatten(2)
        a = torch.softmax(torch.einsum("bci,bcj->bij", q, k), dim=-1)
        out = torch.einsum("bij,bcj->bci", a, v).reshape(2, 16, 3, 5)
        torch.testing.assert_close(att(x), 0.7 * out + x, atol=1e-5, rtol=1e-5)


def test_norm_factory():
    x = torch.randn(2, 3, 4, 4) * 3 + 1
    n = get_norm_layer("instance", 3)
    assert isinstance(n, nn.InstanceNorm2d) and not n.affine and not n.track_running_stats
    y = n(x)
    torch.testing.assert_close(y.mean((2, 3)), torch.zeros(2, 3), atol=1e-5, rtol=0)
    b = get_norm_layer("sync_batch", 3)
    assert isinstance(b, nn.BatchNorm2d) and b.affine and b.track_running_stats
    assert isinstance(get_norm_layer("batch", 3, dim=3), nn.BatchNorm3d)
    assert get_norm_layer("instance", 3, track_running_stats=True).track_running_stats
    assert isinstance(get_norm_layer("none", 3), nn.Identity)
    assert get_norm_layer("instance_affine", 3).affine
    with pytest.raises(V2VError, match="instance"):
        get_norm_layer("instanse", 3)
