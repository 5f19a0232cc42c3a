"""Everybody Dance Now parity with the official fixtures, conversion and loader tolerance."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn

from v2v.compat.dance import config_from_opt, load_official, read_opt
from v2v.errors import V2VError


def test_parity_cli_passes_on_official_fixture(shared, run_cli):
    rc, out, err = run_cli("parity", "dance", shared / "fixtures" / "edn", "--quiet")
    assert rc == 0, out + err
    assert out.strip().endswith("PASS") and "FAIL" not in out
    n = int(out.strip().splitlines()[-1].split(": ")[1].split("/")[0])
    assert n >= 130  # cases.npz + render.npz + posenorm.npz arrays


def test_parity_fails_on_a_perturbed_array(shared, tmp_path, run_cli):
    """The must-fail case: one expected array nudged beyond its tolerance -> exit 1, row named."""
    fx, d = _copy_fixture(shared, tmp_path)  # checkpoints + opt.txt, no render/posenorm cases
    c = dict(np.load(fx / "cases.npz"))
    c["I_0"] = c["I_0"] + np.float32(1e-2)
    np.savez(d / "cases.npz", **c)
    rc, out, _err = run_cli("parity", "dance", d)
    assert rc == 1
    assert any(line.startswith("FAIL") and " I_0 " in line for line in out.splitlines())
    assert out.strip().endswith("FAIL")


def test_options_and_widths_come_from_the_fixture(shared):
    fx = shared / "fixtures" / "edn"
    opt = read_opt(fx / "opt.txt")
    assert opt["label_nc"] == 6 and opt["faceGtype"] == "global" and opt["no_vgg_loss"] is True
    assert read_opt(fx)["ngf"] == 8 and read_opt(fx / "config.json")["ndf"] == 8
    s = load_official(fx)
    assert s.cfg.face_ngf == 4 and s.cfg.face_ndf == 16  # fixture-only widths read from the shapes
    assert s.cfg.label_channels == 3 and s.cfg.input_nc == 6 and s.cfg.train_face_only


def _copy_fixture(shared, tmp_path):
    fx = shared / "fixtures" / "edn"
    d = tmp_path / "ckpt"
    d.mkdir()
    for name in ("opt.txt", "latest_net_G.pth", "latest_net_Gface.pth", "latest_net_D.pth", "latest_net_Dface.pth"):
        shutil.copy(fx / name, d / name)
    return fx, d


def test_loader_tolerates_missing_num_batches_tracked_and_stale_instancenorm_buffers(shared, tmp_path):
    fx, d = _copy_fixture(shared, tmp_path)
    G = torch.load(d / "latest_net_G.pth", map_location="cpu", weights_only=True)
    G["model.2.running_mean"] = torch.zeros(8)  # torch 0.3 InstanceNorm buffers (never used)
    G["model.2.running_var"] = torch.ones(8)
    G["model.13.conv_block.2.running_mean"] = torch.zeros(64)
    G = {"module." + k: v for k, v in G.items()}  # DataParallel prefix
    torch.save(G, d / "latest_net_G.pth")
    Df = torch.load(d / "latest_net_Dface.pth", map_location="cpu", weights_only=True)
    Df = {k: v for k, v in Df.items() if not k.endswith("num_batches_tracked")}  # torch 0.4.0
    torch.save(Df, d / "latest_net_Dface.pth")
    s = load_official(d)
    c = np.load(fx / "cases.npz")
    with torch.no_grad():
        box = torch.from_numpy(c["face_coords"]).long().view(1, 4)
        out = s.generator.step_raw(torch.from_numpy(c["label_0"]), None, box)
        assert np.abs(out["image"].numpy() - c["I_0"]).max() < 1e-4
        s.netDface.eval()
        y = s.netDface(torch.from_numpy(c["Dface_in_real_0"]))
        assert np.abs(y.numpy() - c["Dface_real_0_eval"]).max() < 1e-4


def test_convert_writes_safetensors_that_reproduce_the_official_outputs(shared, tmp_path, run_cli):
    import v2v
    from v2v.weights_io import read_metadata

    fx, d = _copy_fixture(shared, tmp_path)
    rc, _out, err = run_cli("convert", "dance", d, "--opt", fx / "opt.txt", "--out", tmp_path / "conv")
    assert rc == 0, err
    meta = read_metadata(tmp_path / "conv" / "dance.safetensors")
    assert meta["system"] == "dance"
    s = v2v.load(tmp_path / "conv")
    c = np.load(fx / "cases.npz")
    with torch.no_grad():
        g = s.generator.step_raw(torch.from_numpy(c["label_1"]), torch.from_numpy(c["I_0"]),
                                 torch.from_numpy(c["face_coords"]).long().view(1, 4))
    assert np.abs(g["g_out"].numpy() - c["G_out_1"]).max() < 1e-4
    # a wrong options file is a one-line error naming the mismatch
    bad = (fx / "opt.txt").read_text().replace("ngf: 8", "ngf: 16").replace("n_blocks_global: 2", "n_blocks_global: 3")
    (tmp_path / "bad_opt.txt").write_text(bad)
    rc, _out, err = run_cli("convert", "dance", d, "--opt", tmp_path / "bad_opt.txt", "--out", tmp_path / "x")
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


class _RefUnetBlock(nn.Module):
    """pix2pix UnetSkipConnectionBlock written from the README recipe (official key layout)."""

    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner, 4, 2, 1, bias=False)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), nn.BatchNorm2d(inner)
        uprelu, upnorm = nn.ReLU(True), nn.BatchNorm2d(outer)
        if outermost:
            model = [downconv, sub, uprelu, nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            model = [downrelu, downconv, uprelu, nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False), upnorm]
        else:
            model = [downrelu, downconv, downnorm, sub, uprelu,
                     nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False), upnorm]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def test_unet_face_generator_matches_official_layout_and_inplace_skip_quirk():
    from dataclasses import replace

    from v2v.compat.dance import map_generator_keys
    from v2v.models.base import config_kwargs
    from v2v.models.dance import DanceGenerator

    torch.manual_seed(0)
    ngf = 4
    b = _RefUnetBlock(ngf * 8, ngf * 8, innermost=True)
    b = _RefUnetBlock(ngf * 4, ngf * 8, sub=b)
    b = _RefUnetBlock(ngf * 2, ngf * 4, sub=b)
    b = _RefUnetBlock(ngf, ngf * 2, sub=b)
    ref = nn.Module()
    ref.model = _RefUnetBlock(3, ngf, input_nc=6, sub=b, outermost=True)
    for m in ref.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.6, 1.4)
    sd = ref.state_dict()
    assert "model.model.0.weight" in sd and "model.model.1.model.3.model.3.model.3.model.4.running_var" in sd
    cfg = replace(config_from_opt({"netG": "global", "ngf": 4, "n_downsample_global": 2, "n_blocks_global": 1,
                                   "face_generator": True, "faceGtype": "unet", "label_nc": 6},
                                  Gface_sd=sd), vgg=False)
    assert cfg.face_gtype == "unet" and cfg.face_ngf == 4
    g = DanceGenerator(**config_kwargs(DanceGenerator, cfg))
    mapped = {k[5:]: v for k, v in map_generator_keys(sd, cfg, "Gface").items()}
    assert set(mapped) == set(g.face.state_dict())
    g.face.load_state_dict(mapped)
    x = torch.rand(2, 6, 32, 32)
    for mode in ("train", "eval"):
        getattr(ref, mode)()
        getattr(g, mode)()
        g.face_bn_batch_stats = False
        with torch.no_grad():
            assert torch.allclose(g.run_face(x), ref.model(x.clone()), atol=1e-5), mode
    # official scripts never call .eval(): with the default flag, inference uses batch statistics
    ref.train()
    g.eval()
    g.face_bn_batch_stats = True
    with torch.no_grad():
        assert torch.allclose(g.run_face(x), ref.model(x.clone()), atol=1e-5)


def test_missing_checkpoint_and_bad_folder_errors(tmp_path, run_cli):
    rc, _out, err = run_cli("parity", "dance", tmp_path)
    assert rc == 2 and "no cases.npz" in err
    with pytest.raises(V2VError, match="latest_net_G.pth"):
        load_official(tmp_path, {"netG": "global"})


# ---- pix2pixHD reference modules written from the recipe (official key layout) ----------------


def _ref_resblock(ch):
    m = nn.Module()
    m.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
                                 nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))
    m.forward = lambda x: x + m.conv_block(x)
    return m


def _ref_global(inp, out, ngf, nd, nb):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(inp, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(nd):
        m = 2**i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * m * 2), nn.ReLU(True)]
    layers += [_ref_resblock(ngf * 2**nd) for _ in range(nb)]
    for i in range(nd):
        m = 2**(nd - i)
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1),
                   nn.InstanceNorm2d(ngf * m // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class _RefLocal(nn.Module):
    def __init__(self, inp, out, ngf, nd, nb, nbl):
        super().__init__()
        g = _ref_global(inp, out, ngf * 2, nd, nb)
        self.model = nn.Sequential(*list(g)[:-3])
        self.model1_1 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(inp, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True),
                                      nn.Conv2d(ngf, ngf * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * 2), nn.ReLU(True))
        self.model1_2 = nn.Sequential(*[_ref_resblock(ngf * 2) for _ in range(nbl)],
                                      nn.ConvTranspose2d(ngf * 2, ngf, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(ngf),
                                      nn.ReLU(True), nn.ReflectionPad2d(3), nn.Conv2d(ngf, out, 7), nn.Tanh())

    def forward(self, x):
        xd = nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        return self.model1_2(self.model1_1(x) + self.model(xd))


def _ref_nlayer_flat(inp, ndf, n_layers):
    seq = [nn.Conv2d(inp, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True)]
    nf = ndf
    for _ in range(1, n_layers):
        prev, nf = nf, min(nf * 2, 512)
        seq += [nn.Conv2d(prev, nf, 4, 2, 2), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, True)]
    prev, nf = nf, min(nf * 2, 512)
    seq += [nn.Conv2d(prev, nf, 4, 1, 2), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, True), nn.Conv2d(nf, 1, 4, 1, 2)]
    return nn.Sequential(*seq)


def test_local_enhancer_and_flat_discriminator_follow_the_official_layout():
    from v2v.compat.dance import map_generator_keys, map_multiscale_d_keys
    from v2v.models.dance import DanceSystem

    torch.manual_seed(0)
    opt = {"netG": "local", "ngf": 4, "n_downsample_global": 2, "n_blocks_global": 1, "n_blocks_local": 2,
           "label_nc": 6, "no_ganFeat_loss": True, "num_D": 2, "n_layers_D": 2, "ndf": 4, "no_vgg_loss": True}
    ref = _RefLocal(6, 3, 4, 2, 1, 2)
    for p in ref.parameters():
        p.data.normal_(0, 0.3)
    cfg = config_from_opt(opt, ref.state_dict())
    s = DanceSystem(cfg)
    mapped = {k[4:]: v for k, v in map_generator_keys(ref.state_dict(), cfg, "G").items()}
    assert set(mapped) == set(s.generator.net.state_dict())
    s.generator.net.load_state_dict(mapped)
    x = torch.rand(1, 6, 32, 64)
    with torch.no_grad():
        assert torch.allclose(s.generator.net(x), ref(x), atol=1e-5)
    # multiscale D without intermediate features: official keys layer{s}.{i}
    refD = nn.Module()
    for i in range(2):
        setattr(refD, f"layer{i}", _ref_nlayer_flat(12, 4, 2))
    for p in refD.parameters():
        p.data.normal_(0, 0.3)
    sdD = map_multiscale_d_keys(refD.state_dict(), 2, 2, interm=False)
    assert set(sdD) == set(s.netD.state_dict())
    s.netD.load_state_dict(sdD)
    xd = torch.rand(1, 12, 32, 64)
    with torch.no_grad():
        out = s.netD(xd)
        assert torch.allclose(out[0][-1], refD.layer1(xd), atol=1e-5)  # output 0 = the last scale's net
        down = nn.functional.avg_pool2d(xd, 3, 2, 1, count_include_pad=False)
        assert torch.allclose(out[1][-1], refD.layer0(down), atol=1e-5)


def _ref_nlayer_bn(inp, ndf, n_layers):
    seq = [nn.Conv2d(inp, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True)]
    nf = ndf
    for _ in range(1, n_layers):
        prev, nf = nf, min(nf * 2, 512)
        seq += [nn.Conv2d(prev, nf, 4, 2, 2), nn.BatchNorm2d(nf), nn.LeakyReLU(0.2, True)]
    prev, nf = nf, min(nf * 2, 512)
    seq += [nn.Conv2d(prev, nf, 4, 1, 2), nn.BatchNorm2d(nf), nn.LeakyReLU(0.2, True), nn.Conv2d(nf, 1, 4, 1, 2)]
    return nn.Sequential(*seq)


def test_parity_runner_on_another_fixture_set_unet_face_no_interm_features(tmp_path):
    """A fixture set made the same way with other options (unet face generator, BatchNorm, other
    widths, no intermediate D features), its expected arrays computed by the official-layout
    reference modules above: the runner derives everything from opt.txt and the checkpoints."""
    import copy

    from v2v.compat.dance import run_parity

    torch.manual_seed(3)
    opt = ("------------ Options -------------\nnetG: global\nngf: 4\nn_downsample_global: 2\nn_blocks_global: 1\n"
           "label_nc: 6\noutput_nc: 3\nno_instance: True\nnorm: instance\nface_generator: True\nfaceGtype: unet\n"
           "face_discrim: True\nno_ganFeat_loss: True\nnum_D: 2\nn_layers_D: 2\nndf: 4\nno_vgg_loss: True\n"
           "no_lsgan: False\n-------------- End ----------------\n")
    (tmp_path / "opt.txt").write_text(opt)
    G = nn.Module()
    G.model = _ref_global(6, 3, 4, 2, 1)
    F = nn.Module()
    b = _RefUnetBlock(16 * 8 // 2, 16 * 8 // 2, innermost=True)  # ngf 8: widths 64, 64, 32, 16, 8
    b = _RefUnetBlock(32, 64, sub=b)
    b = _RefUnetBlock(16, 32, sub=b)
    b = _RefUnetBlock(8, 16, sub=b)
    F.model = _RefUnetBlock(3, 8, input_nc=6, sub=b, outermost=True)
    Df = nn.Module()
    Df.facemodel = _ref_nlayer_bn(6, 8, 2)
    D = nn.Module()
    D.layer0, D.layer1 = _ref_nlayer_flat(12, 4, 2), _ref_nlayer_flat(12, 4, 2)
    for m in (G, F, Df, D):
        for p in m.parameters():
            p.data.normal_(0, 0.3)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.5)
                mod.running_var.uniform_(0.4, 2.5)
    for name, m in (("G", G), ("Gface", F), ("Dface", Df), ("D", D)):
        torch.save(m.state_dict(), tmp_path / f"latest_net_{name}.pth")
    F_eval, Df_eval = copy.deepcopy(F).eval(), copy.deepcopy(Df).eval()
    F.train()
    Df.train()
    c = {"label_0": torch.rand(1, 3, 64, 128), "label_1": torch.rand(1, 3, 64, 128),
         "real_0": torch.rand(1, 3, 64, 128) * 2 - 1, "real_1": torch.rand(1, 3, 64, 128) * 2 - 1,
         "face_coords": torch.tensor([8, 40, 48, 80], dtype=torch.int32)}
    y0, y1, x0, x1 = c["face_coords"].tolist()
    with torch.no_grad():
        prev = torch.zeros(1, 3, 64, 128)
        for t in (0, 1):
            g = G.model(torch.cat([c[f"label_{t}"], prev], 1))
            fin = torch.cat([c[f"label_{t}"][:, :, y0:y1, x0:x1], g[:, :, y0:y1, x0:x1]], 1)
            res = F.model(fin.clone())
            img = g.clone()
            img[:, :, y0:y1, x0:x1] += res
            c.update({f"G_out_{t}": g, f"faceG_in_{t}": fin, f"face_residual_{t}": res, f"I_{t}": img})
            prev = img
        c["face_residual_0_eval"] = F_eval.model(c["faceG_in_0"].clone())
        c["faceG_case_in"] = torch.rand(1, 6, 32, 32) * 2 - 1
        c["faceG_case_box"] = torch.tensor([0, 32, 0, 32], dtype=torch.int32)
        c["faceG_case_out_train"] = F.model(c["faceG_case_in"].clone())
        c["faceG_case_out_eval"] = F_eval.model(c["faceG_case_in"].clone())
        for tag, im in (("fake", c["I_0"]), ("real", c["real_0"])):
            x = torch.cat([c["label_0"][:, :, y0:y1, x0:x1], im[:, :, y0:y1, x0:x1]], 1)
            c[f"Dface_in_{tag}_0"] = x
            c[f"Dface_{tag}_0_train"] = Df.facemodel(x.clone())
            c[f"Dface_{tag}_0_eval"] = Df_eval.facemodel(x.clone())
    np.savez(tmp_path / "cases.npz", **{k: v.numpy() for k, v in c.items()})
    rep = run_parity(tmp_path)
    assert rep.ok, [r for r in rep.rows if not r.ok]
    names = {r.name for r in rep.rows}
    assert {"I_1", "face_residual_1", "faceG_case_out_eval", "Dface_real_0_eval", "G_out_1"} <= names
    s = load_official(tmp_path)
    assert s.cfg.face_gtype == "unet" and s.cfg.face_ngf == 8 and s.cfg.face_ndf == 8 and not s.cfg.gan_feat
