"""MoCoGAN-HD official format (snap-research/MoCoGAN-HD): options, checkpoints, parity runner.

Official files of a run (``opt.txt`` / ``options.json`` of ``BaseOptions.parse``):

- ``--img_g_weights``: rosinality StyleGAN2 file ``{'g_ema': ..., 'latent_avg': ...}`` (loaded
  ``strict=False``; keys the model lacks are ignored);
- ``<load_pretrain_path>/modelR_epoch_<N>.pth`` (bare ``RNNModule`` state dict), ``modelD_img_*``
  and ``modelD_3d_*`` (``DDP`` state dicts, ``module.`` keys);
- ``<save_pca_path>/pca_comp.npy``, ``pca_stdev.npy``.

Relative paths in the options are resolved against the options file's folder first, then the
working directory. Network widths the official code hard-codes (StyleGAN2 channel table, BigGAN
``D_ch``, D_3d ``ndf``) are read from the files' shapes, so any fixture made the same way with
other sizes loads. Key mapping (official -> v2v):

=========================================== ==================================================
``g_ema.<k>``                               ``generator.<k>`` (identical rosinality keys)
``modelR.<k>``, ``pca_comp``/``pca_stdev``  ``motion.<k>``, ``motion.pca_comp``/``pca_stdev``
``modelD.blocks.<b>.0.<conv>.weight_orig``  ``D_img.modelD.blocks.<b>.<conv>.parametrizations.weight.original``
``netD.scale<s>_layer<j>.0.*`` / ``.1.*``   ``D_3d.scales.<s>.blocks.<j>.conv.*`` / ``.norm.*``
=========================================== ==================================================
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from v2v.compat.common import official_state_dict, read_options
from v2v.compat.report import ParityReport, load_cases
from v2v.errors import V2VError
from v2v.nn.spectral_norm import convert_legacy_spectral_norm

__all__ = ["build_official", "checkpoint_filter_fn", "config_from_official", "detect", "discriminator_filter_fn",
           "read_official", "run_parity"]

_OPT_FILES = ("opt.txt", "options.json")


def _opt_path(config: str | os.PathLike | None, checkpoint: str | os.PathLike | None) -> Path | None:
    cands = []
    if config:
        cands.append(Path(config))
    if checkpoint:
        c = Path(checkpoint)
        d = c if c.is_dir() else c.parent
        cands += [d / n for n in _OPT_FILES] + [d.parent / n for n in _OPT_FILES]
    for p in cands:
        if p.is_dir():
            for n in _OPT_FILES:
                if (p / n).is_file():
                    return p / n
        elif p.is_file():
            return p
    return None


def read_options_file(path: str | os.PathLike) -> dict:
    """Official options (``opt.txt`` or ``options.json`` with ``train_options``) via the shared reader."""
    opts = read_options(path, what="MoCoGAN-HD")
    if "train_options" in opts and isinstance(opts["train_options"], dict):
        ext = opts.get("fixture_extensions") or {}
        opts = {**opts["train_options"], "_extensions": ext}
    if "n_pca" not in opts or "latent_dimension" not in opts:
        raise V2VError(f"{path}: not a MoCoGAN-HD option dump (no 'n_pca' / 'latent_dimension')")
    return opts


def detect(checkpoint: str, config: str | None = None) -> bool:
    """modelR_*.pth / a run folder with opt.txt holding ``n_pca`` and ``img_g_weights``."""
    name = Path(checkpoint).name
    if Path(checkpoint).is_file() and not name.startswith("modelR"):
        return False
    p = _opt_path(config, checkpoint)
    if p is None:
        return False
    try:
        o = read_options(p)
    except V2VError:
        return False
    o = o.get("train_options", o)
    return "n_pca" in o and "img_g_weights" in o


def _resolve(base: Path, rel: str) -> Path:
    p = Path(rel)
    if p.is_absolute():
        return p
    return base / p if (base / p).exists() else p


def _find_modelR(opts: dict, base: Path, checkpoint: str | None) -> Path:
    if checkpoint and Path(checkpoint).is_file():
        return Path(checkpoint)
    folder = Path(checkpoint) if checkpoint and Path(checkpoint).is_dir() else base
    tag = f"epoch_{opts.get('load_pretrain_epoch', 0)}"
    for d in (folder, _resolve(base, str(opts.get("load_pretrain_path", "checkpoints"))), folder / "checkpoints"):
        for t in (tag, "latest"):
            if (d / f"modelR_{t}.pth").is_file():
                return d / f"modelR_{t}.pth"
    raise V2VError(f"no modelR_{tag}.pth (or modelR_latest.pth) under {folder}")


def read_official(checkpoint: str, config: str | None = None, *, image_generator: str | None = None,
                  pca_dir: str | None = None, discriminators: bool = False) -> tuple[dict, dict[str, torch.Tensor]]:
    """(options, state dict with ``g_ema.``/``modelR.``/``pca.`` [+ ``modelD_img.``/``modelD_3d.``] prefixes).

    The options gain ``_widths`` (StyleGAN2 channel table, ``D_ch``, per-scale D_3d widths) read from
    the files' shapes and ``_paths`` (the files used).
    """
    from v2v.nn.stylegan2 import generator_config_from_state_dict, read_rosinality

    op = _opt_path(config, checkpoint)
    if op is None:
        raise V2VError(f"no MoCoGAN-HD opt.txt / options.json given or found beside {checkpoint}")
    opts = read_options_file(op)
    base = op.parent
    r_path = _find_modelR(opts, base, checkpoint)
    g_path = Path(image_generator) if image_generator else _resolve(base, str(opts["img_g_weights"]))
    p_dir = Path(pca_dir) if pca_dir else _resolve(base, str(opts.get("save_pca_path", "pca_stats")))
    from v2v.models.mocogan_hd import load_pca

    comp, stdev = load_pca(str(p_dir), int(opts["n_pca"]), int(opts["latent_dimension"]))
    g = read_rosinality(g_path)["g_ema"]
    sd = {f"g_ema.{k}": v for k, v in g.items()}
    sd.update({f"modelR.{k}": v for k, v in official_state_dict(r_path, "motion generator").items()})
    sd["pca.pca_comp"], sd["pca.pca_stdev"] = comp, stdev
    widths = {"stylegan": generator_config_from_state_dict(g)}
    paths = {"modelR": str(r_path), "image_generator": str(g_path), "pca": str(p_dir)}
    if discriminators:
        for name in ("modelD_img", "modelD_3d"):
            f = r_path.parent / r_path.name.replace("modelR", name)
            d = official_state_dict(f, name)
            sd.update({f"{name}.{k}": v for k, v in d.items()})
            paths[name] = str(f)
        k0 = "modelD_img.modelD.blocks.0.0.conv1.weight_orig"
        if k0 in sd:
            widths["D_ch"] = int(sd[k0].shape[0]) // 4 if int(opts["video_frame_size"]) == 32 else int(sd[k0].shape[0])
        widths["ndf_3d"] = [int(sd[f"modelD_3d.netD.scale{s}_layer0.0.weight"].shape[0])
                            for s in range(int(opts["num_D"]))]
    opts["_widths"], opts["_paths"] = widths, paths
    return opts, sd


def config_from_official(options: dict):
    """Official options (+ ``_widths`` from :func:`read_official`) -> :class:`MoCoGANHDConfig`."""
    from v2v.models.mocogan_hd import MoCoGANHDConfig

    w = options.get("_widths", {})
    sg = w.get("stylegan", {})
    ext = options.get("_extensions", {})
    try:
        ndf = w.get("ndf_3d") or [int(ext.get("ndf_3d", 64))] * int(options["num_D"])
        return MoCoGANHDConfig(
            image_generator=options.get("_paths", {}).get("image_generator"),
            pca_dir=options.get("_paths", {}).get("pca"),
            style_gan_size=int(options["style_gan_size"]), latent_dimension=int(options["latent_dimension"]),
            n_mlp=int(options["n_mlp"]), stylegan_channels=sg.get("channels"),
            h_dim=int(options["h_dim"]), n_pca=int(options["n_pca"]), w_residual=float(options["w_residual"]),
            n_frames_G=int(options["n_frames_G"]), video_frame_size=int(options["video_frame_size"]),
            cross_domain=bool(options.get("cross_domain", False)), nc=int(options.get("nc", 3)),
            D_ch=int(w.get("D_ch", ext.get("D_ch", 96))), l_len=int(options.get("l_len", 256)),
            q_len=int(options.get("q_len", 4096)), moco_t=float(options.get("moco_t", 0.07)),
            moco_m=float(options.get("moco_m", 0.999)),
            world_batch_size=int(options.get("batchSize", 16)) * int(options.get("world_size", 1)),
            num_D=int(options["num_D"]), norm_D_3d=str(options.get("norm_D_3d", "instance")),
            ndf_3d=int(ndf[-1]), ndf_max_3d=int(max(ndf)), w_match=float(options.get("w_match", 1.0)),
            G_step=int(options.get("G_step", 5)))
    except KeyError as exc:
        raise V2VError(f"MoCoGAN-HD options lack {exc}") from None


def _buffers_for(sd_g: dict) -> dict[str, torch.Tensor]:
    """Unused rosinality buffers a file may lack (noise maps, FIR kernels), so strict loading works."""
    from v2v.nn.stylegan2 import generator_config_from_state_dict
    from v2v.ops.modconv import make_kernel

    c = generator_config_from_state_dict(sd_g)
    n_up = int(np.log2(c["size"])) - 2
    out = {}
    for i in range(2 * n_up + 1):
        r = 2 ** ((i + 5) // 2)
        out[f"noises.noise_{i}"] = torch.zeros(1, 1, r, r)
    k = make_kernel([1, 3, 3, 1]) * 4
    for j in range(n_up):
        out[f"convs.{2 * j}.conv.blur.kernel"] = k.clone()
        out[f"to_rgbs.{j}.upsample.kernel"] = k.clone()
    return out


def checkpoint_filter_fn(state_dict: dict, cfg=None) -> dict[str, torch.Tensor]:
    """Official (prefixed as :func:`read_official` returns) -> v2v keys of the inference system."""
    g = {k[6:]: v for k, v in state_dict.items() if k.startswith("g_ema.") and not k.startswith("g_ema.modelR.")}
    out = {f"generator.{k}": v for k, v in {**_buffers_for(g), **g}.items()}
    out.update({f"motion.{k[7:]}": v for k, v in state_dict.items() if k.startswith("modelR.")})
    n_pca = int(state_dict["modelR.w"].shape[1]) if "modelR.w" in state_dict else None
    if "pca.pca_comp" in state_dict:
        out["motion.pca_comp"] = state_dict["pca.pca_comp"][:n_pca].float()
        out["motion.pca_stdev"] = state_dict["pca.pca_stdev"][:n_pca].float()
    out.update(discriminator_filter_fn(state_dict))
    return out


def discriminator_filter_fn(state_dict: dict) -> dict[str, torch.Tensor]:
    """``modelD_img.*`` / ``modelD_3d.*`` official keys -> ``D_img.*`` / ``D_3d.*``."""
    out = {}
    img = {k[len("modelD_img."):]: v for k, v in state_dict.items() if k.startswith("modelD_img.")}
    img = {re.sub(r"blocks\.(\d+)\.0\.", r"blocks.\1.", k): v for k, v in img.items()}
    out.update({f"D_img.{k}": v for k, v in convert_legacy_spectral_norm(img).items()})
    for k, v in state_dict.items():
        m = re.match(r"modelD_3d\.netD\.scale(\d+)_layer(\d+)\.([01])\.(.+)$", k)
        if m:
            part = "conv" if m.group(3) == "0" else "norm"
            out[f"D_3d.scales.{m.group(1)}.blocks.{m.group(2)}.{part}.{m.group(4)}"] = v
    return out


def build_official(checkpoint: str, config: str | None = None, *, image_generator: str | None = None,
                   pca_dir: str | None = None, discriminators: bool = False):
    """Official files -> a loaded :class:`MoCoGANHDSystem` (inference unless ``discriminators``)."""
    from v2v.models.mocogan_hd import MoCoGANHDSystem, video_discriminator
    from v2v.weights_io import check_state_dict

    opts, sd = read_official(checkpoint, config, image_generator=image_generator, pca_dir=pca_dir,
                             discriminators=discriminators)
    cfg = config_from_official(opts)
    cfg.image_generator = cfg.pca_dir = None  # loaded below from the state dict
    sysm = MoCoGANHDSystem.from_config(cfg, inference=not discriminators)
    if discriminators:
        nc, nt = (cfg.nc, cfg.n_frames_G) if cfg.cross_domain else (2 * cfg.nc, cfg.n_frames_G - 1)
        sysm.D_3d = video_discriminator(nc, nt, cfg.num_D, cfg.norm_D_3d, cfg.ndf_3d, cfg.ndf_max_3d,
                                        widths=opts["_widths"]["ndf_3d"])
    ours = checkpoint_filter_fn(sd, cfg)
    if "latent_avg" in ours:
        ours.pop("latent_avg")
    expected = sysm.state_dict()
    check_state_dict(expected, ours, opts["_paths"]["modelR"])
    sysm.load_state_dict(ours)
    return sysm, opts


# ----------------------------------------------------------------------------- parity

def run_parity(fixture_dir: str, **_options) -> ParityReport:
    """Replay every array of ``cases.npz`` (see the fixture README) with v2v; atol 1e-4 (+ rtol 1e-4)."""
    import torch.nn.functional as F

    from v2v.losses.contrastive import cosine_similarity16
    from v2v.losses.gan import gradient_penalty, relativistic_lsgan_loss
    from v2v.models.mocogan_hd import warp

    fx = Path(fixture_dir)
    rep = ParityReport("mocogan-hd", str(fx))
    cases = load_cases(fx / "cases.npz")
    sysm, _opts = build_official(str(fx), None, discriminators=True)
    sysm.eval()
    cfg = sysm.cfg
    t = lambda k: torch.from_numpy(cases[k])
    done: set[str] = {k for k in cases if k.startswith("in_")}

    def cmp(name, ours, atol=1e-4, rtol=1e-4):
        if name in cases:
            rep.compare(name, ours, cases[name], atol=atol, rtol=rtol)
            done.add(name)

    torch.set_grad_enabled(False)
    try:
        z, e = t("in_z"), t("in_rnn_noise")
        n_frames = e.shape[1] + 1
        tr = sysm.trajectory(z, n_frames, e)
        cmp("w0", tr.latents[:, 0])
        cmp("rnn_h", tr.h)
        cmp("rnn_c", tr.c)
        cmp("rnn_tanh", tr.step)
        cmp("latents", tr.latents)
        cmp("e_rec", tr.e_rec)
        noise = [t(f"in_noise_{i}") for i in range(sysm.generator.num_layers)]
        frames_nn = sysm.render(tr.latents)
        cmp("frames_nonoise", frames_nn)
        if "video_u8" in cases:
            u8 = ((frames_nn.clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8).permute(0, 1, 3, 4, 2)
            cmp("video_u8", u8.int(), atol=1.0, rtol=0)
        frames = _render_with_taps(sysm, tr.latents, noise, cmp)
        cmp("frames", frames)
        li = sysm.interpolate(tr.latents)
        cmp("latents_interp", li)
        cmp("frames_interp", sysm.render(li))
        vds = sysm.downsample(frames)
        cmp("video_ds", vds)
        b, tt = vds.shape[:2]
        flat = vds.flatten(0, 1)
        out, proj = sysm.D_img(flat)
        cmp("dimg_out", out.view(b, tt, -1))
        cmp("dimg_proj", proj.view(b, tt, -1))
        cmp("dimg_ema_proj", sysm.D_img(flat, ema=True, proj_only=True).view(b, tt, -1))
        real = t("in_x_real")
        d3f, d3r = sysm.D_3d(vds), sysm.D_3d(real)
        for i in range(cfg.num_D):
            for j in range(len(d3f[i])):
                cmp(f"d3d_fake_s{i}_l{j}", d3f[i][j])
            cmp(f"d3d_real_s{i}_final", d3r[i][-1])
        # augmentation views and image-D heads
        fid = int(cases["in_fake_id"]) if "in_fake_id" in cases else 1
        logits, dout = {}, {}
        for view in ("real2", "real", "fake2", "fake"):
            key = f"in_aug_{view}_"
            if key + "op" not in cases:
                continue
            params = {k[len(key):]: t(k) for k in cases if k.startswith(key)}
            src = vds[:, 0] if view.startswith("real") else vds[:, fid]
            v = warp(src, params)
            cmp(f"aug_{view}", v)
            dout[view], logits[view] = sysm.D_img(v)
            cmp(f"aug_D_{view}", dout[view])
            cmp(f"aug_logits_{view}", logits[view])
            if view in ("real", "fake"):
                cmp(f"aug_logits_{view}_ema", sysm.D_img(v, ema=True, proj_only=True))
        if len(logits) == 4:
            cntr = sysm.D_img.contrastive(logits["real"], logits["real2"], logits["fake"], logits["fake2"])
            cmp("loss_cntr", cntr)
            hr, hf = F.relu(1 - dout["real"]).mean(), F.relu(1 + dout["fake"]).mean()
            cmp("loss_D_hinge_real", hr)
            cmp("loss_D_hinge_fake", hf)
            cmp("loss_D_img_total", hr + hf + 2 * cntr)
            cmp("loss_G_hinge", -dout["fake"].mean())
            cmp("loss_match", -cosine_similarity16(logits["fake"], logits["real"]).mean())
        cmp("loss_mutual", -cosine_similarity16(tr.e_rec.flatten(0, 1), tr.e.flatten(0, 1)).mean())
        cmp("loss_D_real_3d", relativistic_lsgan_loss(d3r, d3f, True))
        cmp("loss_D_fake_3d", relativistic_lsgan_loss(d3f, d3r, False))
        cmp("loss_G_3d", (relativistic_lsgan_loss(d3f, d3r, True) + relativistic_lsgan_loss(d3r, d3f, False)) * 0.5)
        with torch.enable_grad():
            gp = gradient_penalty(sysm.D_3d, real, vds, weight=10.0 / cfg.num_D, alpha=t("in_gp_alpha"),
                                  per_scale=True, norm_dim=2)
        cmp("loss_gp_3d", gp)
        # train-mode arrays: D_img first call (one power iteration), D_3d batch/instance statistics
        sysm.D_img.train()
        sysm.D_3d.train()
        out_t, proj_t = sysm.D_img(flat)
        cmp("dimg_train_out", out_t.view(b, tt, -1))
        cmp("dimg_train_proj", proj_t.view(b, tt, -1))
        d3t = sysm.D_3d(vds)
        for i in range(cfg.num_D):
            cmp(f"d3d_train_fake_s{i}_final", d3t[i][-1])
    finally:
        torch.set_grad_enabled(True)
    for k in sorted(set(cases) - done):
        rep.missing(k, "array in cases.npz not replayed")
    return rep


def _render_with_taps(sysm, latents, noise, cmp) -> torch.Tensor:
    """Render with per-video noise, comparing the intermediate ``conv1_out`` / ``rgb_skip_<r>`` arrays."""
    g = sysm.generator
    b, t, d = latents.shape
    w = latents.reshape(b * t, d)
    nz = [n.unsqueeze(1).expand(b, t, *n.shape[1:]).reshape(b * t, *n.shape[1:]) for n in noise]
    out = g.conv1(g.input(b * t), w, nz[0])
    cmp("conv1_out", out.view(b, t, *out.shape[1:]))
    skip = g.to_rgb1(out, w)
    cmp("rgb_skip_4", skip.view(b, t, *skip.shape[1:]))
    for j, rgb in enumerate(g.to_rgbs):
        out = g.convs[2 * j](out, w, nz[2 * j + 1])
        out = g.convs[2 * j + 1](out, w, nz[2 * j + 2])
        skip = rgb(out, w, skip)
        cmp(f"rgb_skip_{skip.shape[-1]}", skip.view(b, t, *skip.shape[1:]))
    return skip.view(b, t, *skip.shape[1:])
