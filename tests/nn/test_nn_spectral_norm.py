"""Legacy spectral-norm checkpoints load into parametrization-based modules with equal outputs."""
from __future__ import annotations

import torch
from torch import nn

from v2v.nn.spectral_norm import (
    apply_spectral_norm,
    convert_legacy_spectral_norm,
    load_legacy_spectral_norm,
    remove_spectral_norm,
    spectral_norm,
)


def make(legacy: bool):
    sn = nn.utils.spectral_norm if legacy else spectral_norm
    return nn.Sequential(sn(nn.Conv2d(3, 5, 3, padding=1)), nn.LeakyReLU(0.2),
                         sn(nn.Conv2d(5, 4, 4, stride=2)), nn.Flatten(), sn(nn.Linear(4 * 7 * 7, 2)))


def test_legacy_layout_loads_with_equal_outputs():
    torch.manual_seed(0)
    old = make(legacy=True)
    old.train()
    x = torch.randn(2, 3, 16, 16)
    for _ in range(3):  # move u, v away from their init
        old(x)
    sd = old.state_dict()
    assert "0.weight_orig" in sd and "0.weight_u" in sd and "0.weight_v" in sd
    torch.manual_seed(123)
    new = make(legacy=False)
    conv = convert_legacy_spectral_norm(sd)
    assert set(conv) == set(new.state_dict())
    load_legacy_spectral_norm(new, sd)
    old.eval()
    new.eval()
    with torch.no_grad():
        y_old, y_new = old(x), new(x)
    torch.testing.assert_close(y_new, y_old, atol=1e-6, rtol=1e-6)
    # the normalized weight has spectral norm ~1 (u, v converged after a few iterations? check ratio)
    w = new[0].weight.reshape(5, -1)
    assert abs(float(torch.linalg.matrix_norm(w.detach(), 2)) - 1.0) < 0.2
    # train mode: both run one power iteration from the same u, v -> same outputs and same new u
    old.train()
    new.train()
    with torch.no_grad():
        torch.testing.assert_close(new(x), old(x), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(new[0].parametrizations.weight[0]._u, old[0].weight_u, atol=1e-6, rtol=1e-6)


def test_weight_bar_layout_and_missing_v():
    torch.manual_seed(1)
    w, u = torch.randn(4, 3, 3, 3), torch.nn.functional.normalize(torch.randn(4), dim=0)
    v = torch.nn.functional.normalize(torch.randn(27), dim=0)
    sd = {"a.module.weight_bar": w, "a.module.weight_u": u, "a.module.weight_v": v, "a.module.bias": torch.zeros(4)}
    out = convert_legacy_spectral_norm(sd)
    assert torch.equal(out["a.module.parametrizations.weight.original"], w)
    assert torch.equal(out["a.module.parametrizations.weight.0._v"], v)
    assert "a.module.bias" in out and len(out) == 4
    out2 = convert_legacy_spectral_norm({"weight_orig": w, "weight_u": u})
    want_v = torch.nn.functional.normalize(w.reshape(4, -1).t() @ u, dim=0)
    torch.testing.assert_close(out2["parametrizations.weight.0._v"], want_v)


def test_apply_and_remove():
    torch.manual_seed(2)
    m = apply_spectral_norm(nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 1, 1)))
    assert "0.parametrizations.weight.original" in m.state_dict()
    m.eval()
    x = torch.randn(1, 2, 5, 5)
    with torch.no_grad():
        y = m(x)
        remove_spectral_norm(m)
        torch.testing.assert_close(m(x), y)
    assert "0.weight" in m.state_dict()


def test_torch_parametrization_files_load_and_update_in_eval():
    torch.manual_seed(3)
    ref = nn.utils.parametrizations.spectral_norm(nn.Conv2d(3, 6, 3))
    ours = spectral_norm(nn.Conv2d(3, 6, 3))
    ours.load_state_dict(ref.state_dict())
    ref.eval()
    ours.eval()
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))
        u0 = ours.parametrizations.weight[0]._u.clone()
        ours(x)
        assert torch.equal(ours.parametrizations.weight[0]._u, u0)  # eval: no update
        ours.parametrizations.weight[0].update_in_eval = True
        for _ in range(50):
            ours(x)
        # converged power iteration: sigma = largest singular value, normalized weight has norm 1
        w = ours.weight.reshape(6, -1)
    assert abs(float(torch.linalg.matrix_norm(w, 2)) - 1.0) < 1e-4
