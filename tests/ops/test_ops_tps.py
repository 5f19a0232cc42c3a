import torch

from v2v.ops.grid import make_grid
from v2v.ops.tps import tps_warp
from v2v.ops.warp import warp


def _points():
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 6, 2, generator=g) * 1.6 - 0.8


def test_identity_control_points_give_the_identity():
    img = torch.rand(1, 3, 17, 19, generator=torch.Generator().manual_seed(1))
    p = _points()
    out = tps_warp(img, p, p.clone())
    torch.testing.assert_close(out, img, atol=1e-4, rtol=0)


def test_translation_moves_content_like_a_shift():
    # all control points moved by +4 px in x: the TPS is that pure translation, so the output equals
    # a backward warp with flow -4 px in x (content moves right)
    h, w = 16, 21
    img = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(2))
    p = _points()
    shift = torch.tensor([4 * 2 / (w - 1), 0.0])
    out = tps_warp(img, p, p + shift, padding_mode="zeros")
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0] = -4.0
    ref = warp(img, flow, padding_mode="zeros")
    torch.testing.assert_close(out[..., :, 5:], ref[..., :, 5:], atol=1e-4, rtol=0)
    torch.testing.assert_close(out[..., :, 4:], img[..., :, :-4], atol=1e-4, rtol=0)


def test_control_point_content_lands_on_destination():
    h = w = 33
    grid = make_grid(h, w)  # H,W,2 normalized, align_corners=True
    src = torch.tensor([[[-0.5, -0.5], [0.5, -0.5], [0.0, 0.5], [0.5, 0.5], [-0.5, 0.5]]])
    dst = src + torch.tensor([[[0.125, 0.0], [0.0, 0.125], [-0.125, 0.0], [0.0, 0.0], [0.0, -0.125]]])
    # image = x coordinate channel and y coordinate channel: the warped value at dst is the src coordinate
    img = grid.permute(2, 0, 1)[None].contiguous()
    out = tps_warp(img, src, dst, padding_mode="border")
    for (sx, sy), (dx, dy) in zip(src[0].tolist(), dst[0].tolist()):
        j, i = round((dx + 1) * (w - 1) / 2), round((dy + 1) * (h - 1) / 2)
        assert abs(out[0, 0, i, j].item() - sx) < 1e-3 and abs(out[0, 1, i, j].item() - sy) < 1e-3
