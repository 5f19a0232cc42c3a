"""style-dvdgan official compatibility: fixture parity (CLI), must-fail, contract functions,
v2v.load of official files, and the runner on a fixture set made with other options."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch

from v2v.compat import style_dvdgan as cs

FILES = ("latest_netG.pth", "latest_netDs.pth", "latest_netDt.pth", "opt.txt", "options.json")


@pytest.fixture(scope="module")
def fixture_dir(shared):
    return shared / "fixtures" / "style_dvdgan"


def test_parity_cli_passes(fixture_dir, run_cli):
    rc, out, _ = run_cli("parity", "style_dvdgan", fixture_dir)  # underscore spelling accepted
    assert rc == 0, out
    last = out.strip().splitlines()[-1]
    assert "45/45 arrays within tolerance" in last and last.endswith("PASS")
    errs = [float(line.split("max|diff|")[1].split()[0]) for line in out.splitlines() if "max|diff|" in line]
    assert len(errs) == 45 and max(errs) < 1e-5
    assert "c_loss_G " in out and "g_video_call2" in out and "b_gp_dt_fresh_gradnorm" in out


def test_perturbed_arrays_fail(fixture_dir, tmp_path, run_cli):
    for f in FILES:
        shutil.copy(fixture_dir / f, tmp_path / f)
    cases = dict(np.load(fixture_dir / "cases.npz"))
    cases["g_style"] = cases["g_style"] + 1e-3
    cases["c_loss_G"] = cases["c_loss_G"] + 2e-4
    np.savez(tmp_path / "cases.npz", **cases)
    rc, out, _ = run_cli("parity", "style-dvdgan", tmp_path)
    assert rc == 1, out
    failed = {line.split()[1] for line in out.splitlines() if line.startswith("FAIL")}
    assert failed == {"g_style", "c_loss_G"}, out


def test_contract_functions_and_load(fixture_dir):
    import v2v

    ckpt = str(fixture_dir / "latest_netG.pth")
    assert cs.detect(ckpt, None) and cs.detect(str(fixture_dir), None)
    assert not cs.detect(str(fixture_dir / "cases.npz"), None)
    opts, sd = cs.read_official(ckpt, None)
    assert {k.split(".")[0] for k in sd} == {"netG"}
    cfg = cs.config_from_official(opts)
    assert (cfg.resolution, cfg.frames, cfg.ch_g, cfg.ch_ds, cfg.ch_dt, cfg.dvd_spatial_frames) == (64, 4, 4, 2, 2, 2)
    assert cfg.conditional and not cfg.dt_prepool and (cfg.lambda_S, cfg.lambda_T, cfg.n_critic) == (1.0, 5.0, 3)
    assert cs.read_options(fixture_dir / "options.json")["ch_g"] == 4  # the JSON form reads too
    s = v2v.load(ckpt)
    assert type(s).system_name == "style-dvdgan" and set(s.state_dict()) == set(cs.checkpoint_filter_fn(sd, cfg))
    cases = np.load(fixture_dir / "cases.npz")
    with torch.no_grad():
        video = s.generator(torch.from_numpy(cases["input_image"]), 4)
    np.testing.assert_allclose(video.numpy(), cases["g_video"], atol=1e-5)


# ---- a fixture set made the same way with other options ------------------------------------------
_SN = re.compile(r"^(.*)\.parametrizations\.weight\.(original|0\._u|0\._v)$")
_BACK = [("disc_spatial.", [(r"^blocks\.0\.conv0\.", "pre_conv.0."), (r"^blocks\.0\.conv1\.", "pre_conv.2."),
                            (r"^blocks\.0\.conv_sc\.", "pre_skip."), (r"^blocks\.1\.", "conv1."),
                            (r"^blocks\.2\.(query|key|value)\.", r"attn.\1_conv."), (r"^blocks\.2\.gamma", "attn.gamma")],
          r"^blocks\.(\d+)\.", "conv2.", 3, "netDs"),
         ("disc_temporal.", [(r"^blocks3d\.0\.conv0\.", "pre_conv.0."), (r"^blocks3d\.0\.conv1\.", "pre_conv.2."),
                             (r"^blocks3d\.0\.conv_sc\.", "pre_skip."), (r"^blocks3d\.1\.", "res3d."),
                             (r"^blocks\.0\.(query|key|value)\.", r"self_attn.\1_conv."),
                             (r"^blocks\.0\.gamma", "self_attn.gamma")], r"^blocks\.(\d+)\.", "conv.", 1, "netDt"),
         ("generator.", [], None, None, 0, "netG")]


def to_official(sd: dict) -> dict[str, dict]:
    """Our state dict -> the three official state dicts (inverse of checkpoint_filter_fn)."""
    sn_layers = {m.group(1) for k in sd if (m := _SN.match(k))}
    out = {"netG": {}, "netDs": {}, "netDt": {}}
    for k, v in sd.items():
        m = _SN.match(k)
        if m:
            k = m.group(1) + ".module." + {"original": "weight_bar", "0._u": "weight_u", "0._v": "weight_v"}[m.group(2)]
        elif k.endswith(".bias") and k[: -len(".bias")] in sn_layers:
            k = k[: -len(".bias")] + ".module.bias"
        for prefix, table, shift_pat, shift_to, shift, net in _BACK:
            if k.startswith(prefix):
                rest = k[len(prefix):]
                for pat, rep in table:
                    if re.match(pat, rest):
                        rest = re.sub(pat, rep, rest)
                        break
                else:
                    mm = re.match(shift_pat, rest) if shift_pat else None
                    if mm:
                        rest = f"{shift_to}{int(mm.group(1)) - shift}." + rest[mm.end():]
                out[net][rest] = v
    return out


def _write_fixture(d, opts: dict, seed: int = 0):
    from v2v.losses.gan import gradient_penalty
    from v2v.models.style_dvdgan import StyleDVDGANSystem, spatial_stack

    torch.manual_seed(seed)
    cfg = cs.config_from_official(opts)
    cfg.modconv = "grouped"
    s = StyleDVDGANSystem.from_config(cfg)
    with torch.no_grad():
        for p in s.parameters():
            p.add_(0.1 * torch.randn_like(p))
    for net, sd in to_official(s.state_dict()).items():
        torch.save(sd, d / f"latest_{net}.pth")
    (d / "opt.txt").write_text("----------------- Options ---------------\n" + "".join(
        f"{k:>25}: {v!s:<30}\n" for k, v in opts.items()) + "----------------- End -------------------\n")
    fresh = {k: v.clone() for k, v in s.state_dict().items()}
    b, t, r = 2, cfg.frames, cfg.resolution
    real = torch.rand(b, t, 3, r, r)
    img = real[:, 0]
    g = torch.Generator().manual_seed(seed)
    pick = lambda: torch.randperm(t - 1, generator=g)[: cfg.dvd_spatial_frames] + 1
    c = {"input_image": img, "target_video": real, "alpha_ds": torch.rand(cfg.dvd_spatial_frames, 1, 1, 1, 1),
         "alpha_dt": torch.rand(b, 1, 1, 1, 1), "b_ds_idx_fake": pick(), "b_ds_idx_real": pick(),
         "c_idx_ds_fake": pick(), "c_idx_ds_real": pick(), "c_idx_g_fake": pick()}
    with torch.no_grad():
        c["g_video"] = fake = s.generator(img, t)
    cond = img if cfg.conditional else None
    s.load_state_dict(fresh)
    c["b_ds_fake"] = s.disc_spatial(spatial_stack(fake, c["b_ds_idx_fake"], cond))
    s.load_state_dict(fresh)
    c[f"b_dt_real_prepool{int(cfg.dt_prepool)}"] = s.disc_temporal(real)
    s.load_state_dict(fresh)
    c["b_gp_dt_fresh"] = gradient_penalty(s.disc_temporal, real, fake, alpha=c["alpha_dt"])
    s.load_state_dict(fresh)
    fk = s.generator(img, t)
    ls = s.loss_ds(img, real, fk, c["c_idx_ds_fake"], c["c_idx_ds_real"], c["alpha_ds"])
    lt = s.loss_dt(real, fk, c["alpha_dt"])
    lg = s.loss_g(img, fk, c["c_idx_g_fake"])
    c.update(c_loss_Ds=ls["loss"].reshape(1), c_loss_Dt_GP=lt["gp"].reshape(1), c_loss_G=lg["loss"].reshape(1))
    np.savez(d / "cases.npz", **{k: v.detach().numpy() for k, v in c.items()})


def test_runner_reads_every_option_from_the_files(tmp_path, fixture_dir):
    """Widths, resolution, T, K, gru_layers, up_blocks_per_rnn, start_fp and prepool all come from opt.txt."""
    base = cs.read_options(fixture_dir / "opt.txt")
    opts = {**base, "resolution": 64, "fps": 5, "max_clip_length": 1.0, "ch_g": 3, "ch_ds": 1, "ch_dt": 2,
            "dvd_spatial_frames": 3, "gru_layers": 2, "up_blocks_per_rnn": 2, "start_fp": 3, "no_dt_prepool": True,
            "conditional": False}
    _write_fixture(tmp_path, opts)
    cfg = cs.config_from_official(cs.read_options(tmp_path / "opt.txt"))
    assert (cfg.frames, cfg.dvd_spatial_frames, cfg.gru_layers, cfg.up_blocks_per_rnn, cfg.start_fp) == (5, 3, 2, 2, 3)
    from v2v.models.style_dvdgan import pyramid_geometry

    assert pyramid_geometry(cfg.resolution, cfg.start_fp, cfg.max_fp) == (3, 8)  # latent 8: another style head
    rep = cs.run_parity(str(tmp_path))
    assert rep.ok, "\n".join(rep.lines())
    assert len(rep.rows) == 7
