"""flow_estimation.py: DIS recovers a known translation of a real frame; direction; errors."""

import numpy as np
import pytest
import torch

from v2v.errors import V2VError
from v2v.ops.flow_estimation import estimate_flow
from v2v.ops.warp import warp

FRAME = "data/cityscapes_seq/imaginaire_street/images/seq0001/aachen_000001_000000_leftImg8bit.png"


@pytest.fixture(scope="module")
def windows(shared):
    import cv2
    img = cv2.imread(str(shared / FRAME), cv2.IMREAD_COLOR)
    assert img is not None, FRAME
    img = np.ascontiguousarray(img[:, :, ::-1])  # RGB
    h, w, y0, x0, dx, dy = 128, 160, 400, 800, 3, 2
    a = img[y0 : y0 + h, x0 : x0 + w]
    b = img[y0 + dy : y0 + dy + h, x0 + dx : x0 + dx + w]  # b(p) = a(p + (dx, dy))
    return a, b, dx, dy


def test_dis_recovers_translation_and_direction(windows):
    a, b, dx, dy = windows
    flow = estimate_flow(a, b, method="dis")
    assert flow.shape == (1, 2, 128, 160) and flow.dtype == torch.float32
    # a(p) = b(p - (dx, dy))  =>  backward flow from a to b is (-dx, -dy)
    epe = ((flow[0, 0] + dx) ** 2 + (flow[0, 1] + dy) ** 2).sqrt().mean()
    assert float(epe) < 0.5, float(epe)
    # tensors in [0,1] give the same result; warp(b, flow) reproduces a in the interior
    ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
    assert torch.equal(estimate_flow(ta, tb), flow)
    err = (warp(tb, flow) - ta)[:, :, 8:-8, 8:-8].abs().mean()
    assert float(err) < 0.02


def test_farneback_direction(windows):
    a, b, dx, dy = windows
    flow = estimate_flow(a, b, method="farneback", levels=3, winsize=21)
    mx, my = float(flow[0, 0].median()), float(flow[0, 1].median())
    assert abs(mx + dx) < 1.0 and abs(my + dy) < 1.0, (mx, my)


def test_errors(tmp_path, monkeypatch):
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(V2VError, match="did you mean 'raft'"):
        estimate_flow(x, x, method="rafft")
    monkeypatch.setenv("V2V_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(V2VError, match=r"raft_large.*download"):
        estimate_flow(x, x, method="raft")


def test_raft_plumbing_pads_and_crops():
    """The RAFT path normalizes to [-1,1], pads to multiples of 8 and crops back (fake net)."""
    calls = []

    def fake(x, y, num_flow_updates):
        calls.append((tuple(x.shape), num_flow_updates))
        return [torch.cat([x[:, :1], y[:, :1]], 1)]  # flow channels = the two images' red

    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 130, 140), torch.rand(1, 3, 130, 140)
    f = estimate_flow(a, b, method="raft", net=fake, num_flow_updates=3)
    assert calls == [((1, 3, 136, 144), 3)]
    assert torch.allclose(f[:, 0], a[:, 0] * 2 - 1) and torch.allclose(f[:, 1], b[:, 0] * 2 - 1)


@pytest.mark.slow
def test_raft_runs_with_random_weights():
    """RAFT path with an explicitly passed randomly initialised model (no weights available)."""
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    net = raft_small(weights=None).eval()
    x = torch.rand(1, 3, 36, 44)  # small and not a multiple of 8: resized, padded, cropped back
    f = estimate_flow(x, x, method="raft", net=net, num_flow_updates=2)
    assert f.shape == (1, 2, 36, 44) and torch.isfinite(f).all()
