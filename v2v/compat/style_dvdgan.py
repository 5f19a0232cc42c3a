"""Official mt_videosynthesis ``--model dvdgan --generator style2`` files <-> v2v style-dvdgan.

Official files (``BaseModel.save_networks``): ``<epoch>_netG.pth``, ``<epoch>_netDs.pth``,
``<epoch>_netDt.pth`` (bare state dicts; ``module.`` prefixes of GPU runs stripped) and the
option dump ``opt.txt`` (or the fixture's ``options.json``).

Key mapping (:func:`checkpoint_filter_fn`):

- the repo's ``SpectralNorm`` wrapper ``<p>.module.weight_bar/_u/_v`` + ``<p>.module.bias`` ->
  our parametrization ``<p>.parametrizations.weight.original/0._u/0._v`` + ``<p>.bias``;
- netG keeps its names under ``generator.`` (our generator mirrors the official module tree,
  StyleGAN2 layers from :mod:`v2v.nn.stylegan2` in the rosinality layout);
- netDs: ``pre_conv.0/.2``, ``pre_skip`` -> ``disc_spatial.blocks.0.conv0/conv1/conv_sc``,
  ``conv1`` -> ``blocks.1``, ``attn.{query,key,value}_conv`` -> ``blocks.2.{query,key,value}``,
  ``conv2.i`` -> ``blocks.{3+i}``; netDt: ``pre_conv``/``pre_skip`` -> ``disc_temporal.blocks3d.0``,
  ``res3d`` -> ``blocks3d.1``, ``self_attn`` -> ``blocks.0``, ``conv.i`` -> ``blocks.{1+i}``.

:func:`run_parity` replays ``cases.npz`` of a fixture folder (see its README): generator
outputs and intermediates, D_S / D_T outputs with fresh spectral-norm state, gradient
penalties and their gradient norms, and the official loss sequence with the spectral-norm
state carried over from call to call.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from v2v.compat.common import OPTION_FILES, official_state_dict
from v2v.compat.common import read_options as common_read_options
from v2v.compat.report import ParityReport, load_cases
from v2v.errors import V2VError
from v2v.nn.spectral_norm import convert_legacy_spectral_norm

__all__ = ["checkpoint_filter_fn", "config_from_official", "detect", "load_official", "read_official",
           "read_options", "run_parity"]

NETS = {"netG": "generator.", "netDs": "disc_spatial.", "netDt": "disc_temporal."}


# ---- option files ------------------------------------------------------------------------------
def read_options(path: str | os.PathLike) -> dict:
    """Official options (``opt.txt`` / ``options.json``, or a folder holding one) through the one
    shared reader :func:`v2v.compat.common.read_options`."""
    return common_read_options(path, what="style-dvdgan")


def _find_options(checkpoint: str | os.PathLike, config) -> Path | None:
    if config:
        return Path(config)
    d = Path(checkpoint).parent
    for name in OPTION_FILES:
        if (d / name).is_file():
            return d / name
    return None


# ---- the contract --------------------------------------------------------------------------------
def detect(checkpoint: str, config: str | None = None) -> bool:
    """Official style2 files: ``*_netG.pth`` with an option file saying ``generator: style2``."""
    if Path(checkpoint).is_dir():
        checkpoint = Path(checkpoint) / "latest_netG.pth"
    if not str(checkpoint).endswith(".pth") or "_net" not in Path(checkpoint).name:
        return False
    opt = _find_options(checkpoint, config)
    if opt is None or not opt.is_file():
        return False
    try:
        o = read_options(opt)
    except V2VError:
        return False
    return o.get("model") == "dvdgan" and o.get("generator") == "style2"


def read_official(checkpoint: str, config: str | None = None, discriminators: bool = False) -> tuple[dict, dict]:
    """(official options, official state dict with net prefixes ``netG.``/``netDs.``/``netDt.``).

    ``checkpoint`` is ``<epoch>_netG.pth`` (or the folder holding ``latest_netG.pth``); with
    ``discriminators`` the ``_netDs``/``_netDt`` files beside it are read too.
    """
    ck = Path(checkpoint)
    if ck.is_dir():
        ck = ck / "latest_netG.pth"
    opt_path = _find_options(ck, config)
    if opt_path is None:
        raise V2VError(f"{ck.parent}: no official option file ({', '.join(OPTION_FILES)}); pass it as the config")
    opts = read_options(opt_path)
    m = re.match(r"^(.*)_net(G|Ds|Dt)\.pth$", ck.name)
    if not m:
        raise V2VError(f"{ck}: expected an official <epoch>_netG.pth file")
    nets = ["netG"] + (["netDs", "netDt"] if discriminators else [])
    sd = {}
    for net in nets:
        part = official_state_dict(ck.parent / f"{m.group(1)}_{net}.pth", what=f"official {net} checkpoint")
        sd.update({f"{net}.{k}": v for k, v in part.items()})
    return opts, sd


def config_from_official(options: dict):
    """Official options -> :class:`v2v.models.style_dvdgan.StyleDVDGANConfig` (every model option read)."""
    from v2v.models.style_dvdgan import StyleDVDGANConfig

    o = dict(options)
    if o.get("generator", "style2") != "style2":
        raise V2VError(f"official options: generator '{o.get('generator')}' is not style2")
    need = ("resolution", "fps", "max_clip_length", "skip_frames", "ch_g")
    missing = [k for k in need if k not in o]
    if missing:
        raise V2VError(f"official options lack {', '.join(missing)}")
    frames = int(float(o["max_clip_length"]) * float(o["fps"]) / float(o["skip_frames"]))
    n_acc = o.get("n_acc_batches")
    if n_acc is None:
        pbs = o.get("parallell_batch_size") or o.get("batch_size", 1)
        n_acc = max(1, int(o.get("batch_size", 1)) // int(pbs))
    if o.get("use_segmentation"):
        raise V2VError("official options: use_segmentation=True is not supported (RGB input only)")
    d = StyleDVDGANConfig()

    def get(k, default):
        v = o.get(k)
        return default if v is None else v

    return StyleDVDGANConfig(
        resolution=int(o["resolution"]), frames=frames, input_nc=int(get("input_nc", 3)), ch_g=int(o["ch_g"]),
        ch_ds=int(get("ch_ds", d.ch_ds)), ch_dt=int(get("ch_dt", d.ch_dt)), start_fp=int(get("start_fp", 3)),
        max_fp=int(get("max_fp", d.max_fp)), up_blocks_per_rnn=int(get("up_blocks_per_rnn", 1)),
        gru_layers=int(get("gru_layers", 1)), dvd_spatial_frames=int(get("dvd_spatial_frames", 8)),
        conditional=bool(get("conditional", False)), dt_prepool=not bool(get("no_dt_prepool", False)),
        lambda_S=float(get("lambda_S", 0.1)), lambda_T=float(get("lambda_T", 0.1)),
        lambda_GP=float(get("lambda_GP", 1.0)), n_critic=int(get("n_critic", 2)), n_acc_batches=int(n_acc))


_DS = [(r"^pre_conv\.0\.", "blocks.0.conv0."), (r"^pre_conv\.2\.", "blocks.0.conv1."), (r"^pre_skip\.", "blocks.0.conv_sc."),
       (r"^conv1\.", "blocks.1."), (r"^attn\.(query|key|value)_conv\.", r"blocks.2.\1."), (r"^attn\.gamma$", "blocks.2.gamma")]
_DT = [(r"^pre_conv\.0\.", "blocks3d.0.conv0."), (r"^pre_conv\.2\.", "blocks3d.0.conv1."), (r"^pre_skip\.", "blocks3d.0.conv_sc."),
       (r"^res3d\.", "blocks3d.1."), (r"^self_attn\.(query|key|value)_conv\.", r"blocks.0.\1."),
       (r"^self_attn\.gamma$", "blocks.0.gamma")]


def _rename(key: str, table, shift_pat: str, shift: int) -> str:
    for pat, rep in table:
        if re.match(pat, key):
            return re.sub(pat, rep, key)
    m = re.match(shift_pat, key)
    if m:
        return f"blocks.{int(m.group(1)) + shift}." + key[m.end():]
    return key


def checkpoint_filter_fn(state_dict: dict, cfg=None) -> dict[str, torch.Tensor]:
    """Official keys (``netG.``/``netDs.``/``netDt.`` prefixed, or bare netG keys) -> ours (module docstring)."""
    out = {}
    for k, v in state_dict.items():
        net, _, rest = k.partition(".")
        if net not in NETS:
            net, rest = "netG", k
        rest = rest.replace(".module.", ".")
        rest = rest.removeprefix("module.")
        if net == "netDs":
            rest = _rename(rest, _DS, r"^conv2\.(\d+)\.", 3)
        elif net == "netDt":
            rest = _rename(rest, _DT, r"^conv\.(\d+)\.", 1)
        out[NETS[net] + rest] = v
    return convert_legacy_spectral_norm(out, orig_suffixes=("_bar",))


def load_official(checkpoint: str, config: str | None = None, discriminators: bool = False, modconv: str = "batched"):
    """Build the system from official files: ``(system, config)``; strict, one-line errors on mismatch."""
    from v2v.models.style_dvdgan import StyleDVDGANSystem
    from v2v.weights_io import check_state_dict

    opts, sd = read_official(checkpoint, config, discriminators)
    cfg = config_from_official(opts)
    cfg.modconv = modconv
    system = StyleDVDGANSystem.from_config(cfg, inference=not discriminators)
    ours = checkpoint_filter_fn(sd, cfg)
    check_state_dict(system.state_dict(), ours, str(checkpoint))
    system.load_state_dict(ours, strict=True)
    return system, cfg


# ---- parity ------------------------------------------------------------------------------------
def _grad_norms(d, real, fake, alpha):
    x = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(d(x).sum(), x)
    return g.reshape(g.shape[0], -1).norm(dim=1)


def run_parity(fixture_dir: str, atol: float = 1e-4, modconv: str = "grouped", **_) -> ParityReport:
    """Replay every array of ``<fixture_dir>/cases.npz`` (module docstring); rows at ``atol``."""
    from v2v.models.style_dvdgan import spatial_stack

    fx = Path(fixture_dir)
    rep = ParityReport("style-dvdgan", str(fixture_dir))
    cases = load_cases(fx / "cases.npz")
    torch.set_grad_enabled(True)
    system, cfg = load_official(fx / "latest_netG.pth", None, discriminators=True, modconv=modconv)
    system.train()
    fresh = {k: v.clone() for k, v in system.state_dict().items()}
    g, ds, dt = system.generator, system.disc_spatial, system.disc_temporal

    def t(name):
        return torch.from_numpy(cases[name])

    def reload():
        system.load_state_dict(fresh)

    done = set()

    def cmp(name, ours):
        if name not in cases:
            return
        done.add(name)
        rep.compare(name, ours.detach().reshape(cases[name].shape) if ours.numel() == cases[name].size else ours,
                    cases[name], atol=atol)

    image, real = t("input_image"), t("target_video")
    n_frames = real.shape[1]
    done.update({"input_image", "target_video"})
    # (a) generator, fresh SN state, then a second call
    trace: dict = {}
    with torch.no_grad():
        video = g(image, n_frames, trace=trace)
        video2 = g(image, n_frames)
    cmp("g_video", video)
    cmp("g_video_call2", video2)
    cmp("g_style", trace["style"])
    for i, e in enumerate(trace["enc"]):
        cmp(f"g_enc{i}", e)
    for lv in range(g.depth):
        if f"gru{lv}" in trace:
            cmp(f"g_gru{lv}", trace[f"gru{lv}"])
        cmp(f"g_lvl{lv}_out", trace[f"lvl{lv}"])
    cmp("g_rgb_pre_tanh", trace["rgb"])
    fake = torch.from_numpy(cases["g_video"])  # the official fake feeds the D cases (as in the fixture)
    cond = image if cfg.conditional else None

    # (b) D_S / D_T with fresh SN state
    idx_f, idx_r = t("b_ds_idx_fake"), t("b_ds_idx_real")
    done.update({"b_ds_idx_fake", "b_ds_idx_real", "alpha_ds", "alpha_dt"})
    s_fake, s_real = spatial_stack(fake, idx_f, cond), spatial_stack(real, idx_r, cond)
    attn = ds.blocks[2]
    feats = {}
    hooks = [attn.register_forward_hook(lambda m, i, o: feats.__setitem__("attn", o)),
             ds.linear.register_forward_hook(lambda m, i, o: feats.__setitem__("feat", i[0]))]
    reload()
    cmp("b_ds_fake", ds(s_fake))
    cmp("b_ds_fake_attn_out", feats["attn"])
    cmp("b_ds_fake_feat", feats["feat"])
    reload()
    cmp("b_ds_real", ds(s_real))
    for h in hooks:
        h.remove()
    for pre in (0, 1):  # the configured switch and the alternative one, same weights
        tag = f"b_dt_fake_prepool{pre}"
        dt.prepool = bool(pre)
        if tag in cases:
            hooks = [dt.blocks3d[-1].register_forward_hook(lambda m, i, o: feats.__setitem__("res3d", o)),
                     dt.blocks[0].register_forward_hook(lambda m, i, o: feats.__setitem__("attn", o)),
                     dt.linear.register_forward_hook(lambda m, i, o: feats.__setitem__("feat", i[0]))]
            reload()
            cmp(tag, dt(fake))
            cmp(tag + "_res3d_out", feats["res3d"])
            cmp(tag + "_attn_out", feats["attn"])
            cmp(tag + "_feat", feats["feat"])
            for h in hooks:
                h.remove()
        if f"b_dt_real_prepool{pre}" in cases:
            reload()
            cmp(f"b_dt_real_prepool{pre}", dt(real))
    dt.prepool = cfg.dt_prepool
    a_ds, a_dt = t("alpha_ds"), t("alpha_dt")
    from v2v.losses.gan import gradient_penalty

    reload()
    cmp("b_gp_ds_fresh", gradient_penalty(ds, s_real, s_fake, alpha=a_ds))
    reload()
    cmp("b_gp_ds_fresh_gradnorm", _grad_norms(ds, s_real, s_fake, a_ds))
    reload()
    cmp("b_gp_dt_fresh", gradient_penalty(dt, real, fake, alpha=a_dt))
    reload()
    cmp("b_gp_dt_fresh_gradnorm", _grad_norms(dt, real, fake, a_dt))

    # (c) the official loss sequence on one set of fresh networks (SN state carried over)
    reload()
    done.update({"c_idx_ds_fake", "c_idx_ds_real", "c_idx_g_fake"})
    fake_c = g(image, n_frames)
    ls = system.loss_ds(image, real, fake_c, t("c_idx_ds_fake"), t("c_idx_ds_real"), a_ds)
    lt = system.loss_dt(real, fake_c, a_dt)
    lg = system.loss_g(image, fake_c, t("c_idx_g_fake"))
    for k, v in (("Ds_fake", ls["fake"]), ("Ds_real", ls["real"]), ("Ds_GP", ls["gp"]), ("Ds", ls["loss"]),
                 ("Dt_fake", lt["fake"]), ("Dt_real", lt["real"]), ("Dt_GP", lt["gp"]), ("Dt", lt["loss"]),
                 ("Gs", lg["Gs"]), ("Gt", lg["Gt"]), ("G", lg["loss"])):
        cmp(f"c_loss_{k}", v.reshape(1))
    for name in sorted(set(cases) - done):
        rep.missing(name, "array in cases.npz not replayed")
    return rep
