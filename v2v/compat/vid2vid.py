"""NVIDIA/vid2vid compatibility: the system contract (pure functions) + converter + parity runner.

Contract (``docs/sections/adding_a_system.md``):

- :func:`detect` / :func:`read_official`: a released folder (``latest_net_G0.pth`` ..
  ``latest_net_G<n-1>.pth``, ``opt.txt``, and the single-image generator
  ``label2city_single/latest_net_G_<loadSize>.pth`` inside or beside the folder) -> (options,
  state dict with keys ``G<s>.*`` and ``single.*``).
- :func:`config_from_official`: official options -> :class:`Vid2VidModelConfig` (the only place that
  knows official option names; the single-G branch follows ``load_single_G``: loadSize 512 ->
  global, 3 downsamplings; 1024 -> global, 4; 2048 -> local (LocalEnhancer), 4).
- :func:`checkpoint_filter_fn`: ``G<s>.k`` -> ``netG.scales.<s>.k``, ``single.k`` -> ``netG_i.k``
  (the networks have the official layout; torch 0.4 files lack ``num_batches_tracked``: added).
- :func:`run_parity`: every case of a fixture folder's ``cases.npz`` -> :class:`ParityReport`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from v2v.compat.common import official_state_dict, read_options
from v2v.compat.report import ParityReport, load_cases
from v2v.errors import V2VError
from v2v.models.vid2vid import (
    Vid2VidModelConfig,
    Vid2VidSystem,
    build_image_discriminator,
    build_temporal_discriminator,
)
from v2v.nn.vid2vid_blocks import encode_labels, foreground_mask, label_pyramid, norm_statistics

__all__ = ["checkpoint_filter_fn", "config_from_official", "convert", "detect", "find_single_G", "load_official",
           "load_official_discriminator", "map_discriminator_key", "read_official", "read_official_options",
           "run_parity"]

SINGLE_G = {512: ("global", 3, 64), 1024: ("global", 4, 64), 2048: ("local", 4, 32)}   # load_single_G


# ----------------------------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------------------------
def read_official_options(path: str | os.PathLike) -> dict:
    """Official options (``opt.txt`` / ``options.json`` / folder) via the one reader; an
    ``options.json`` beside them contributes its ``test_time`` settings (test.py flags)."""
    opts = read_options(path, required="label_nc", what="vid2vid")
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    js = folder / "options.json"
    if js.is_file():
        tt = read_options(js, what="vid2vid").get("test_time")
        if isinstance(tt, dict):
            opts.update({k: v for k, v in tt.items() if not isinstance(v, dict)})
    return opts


def config_from_official(options: dict) -> Vid2VidModelConfig:
    """Official option dict -> :class:`Vid2VidModelConfig` (everything derived from the options)."""
    from dataclasses import fields

    from v2v.config import from_dict

    if options.get("netG", "composite") != "composite":
        raise V2VError(f"official option netG='{options.get('netG')}' is not supported (only 'composite')")
    if int(options.get("label_nc", 1)) == 0:
        raise V2VError("official option label_nc=0 (RGB/edge inputs) is not supported; vid2vid here takes label maps")
    skip = {"niter_fix_global", "load_pretrain"}           # official epochs / run folders: not ours
    names = {f.name for f in fields(Vid2VidModelConfig)} - skip
    kw = {k: v for k, v in options.items() if k in names}
    if kw.get("gan_mode") == "ls":
        kw["gan_mode"] = "lsgan"
    kw["use_vgg"] = not options.get("no_vgg", False)
    kw["first_frame"] = ("generate" if options.get("no_first_img") else
                         "real" if options.get("use_real_img") or not options.get("use_single_G") else "single_G")
    if kw["first_frame"] == "single_G":
        load = int(options.get("loadSize", 1024))
        if load not in SINGLE_G:
            raise V2VError(f"use_single_G: the official code has no single-image generator for loadSize {load} "
                           f"(only {sorted(SINGLE_G)})")
        kind, n_down, ngf = SINGLE_G[load]
        kw.update(first_frame_G=kind, first_frame_n_downsample=n_down,
                  first_frame_ngf=int(options.get("single_G_ngf", ngf)))
        if "single_G_n_local_enhancers" in options:
            kw["n_local_enhancers"] = int(options["single_G_n_local_enhancers"])
    return from_dict(Vid2VidModelConfig, kw, prefix="options")


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------
def _g0_path(checkpoint: str | os.PathLike, epoch: str = "latest") -> Path:
    p = Path(checkpoint)
    if p.is_dir():
        p = p / f"{epoch}_net_G0.pth"
    if not p.is_file():
        raise V2VError(f"official vid2vid generator not found: {p}")
    return p


def find_single_G(g0: Path, load_size: int, explicit: str | None = None) -> tuple[Path | None, list[Path]]:
    """The single-image generator file: ``explicit``, else ``label2city_single/latest_net_G_<loadSize>.pth``
    inside the checkpoint folder or beside it. Returns (path or None, the paths looked at)."""
    if explicit:
        return (Path(explicit) if Path(explicit).is_file() else None), [Path(explicit)]
    name = Path("label2city_single") / f"latest_net_G_{load_size}.pth"
    cands = [g0.parent / name, g0.parent.parent / name]
    return next((c for c in cands if c.is_file()), None), cands


def detect(checkpoint: str, config: str | None = None) -> bool:
    """Cheap: an official vid2vid ``latest_net_G0.pth`` / folder with vid2vid options."""
    p = Path(checkpoint)
    g0 = p / "latest_net_G0.pth" if p.is_dir() else p
    if not re.fullmatch(r".*_net_G0\.pth", g0.name) or not g0.is_file():
        return False
    try:
        opts = read_options(config or g0.parent, what="vid2vid")
    except V2VError:
        return False
    return "n_frames_G" in opts and "label_nc" in opts


def read_official(checkpoint: str, config: str | None = None, first_frame_generator: str | None = None,
                  use_single_G: bool | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """(official options, state dict ``G<s>.*`` [+ ``single.*``]) of a released folder / G0 file.

    ``use_single_G``: None = when the options ask for it, a path is given, or the file is found.
    One-line V2VError naming the path looked for when a scale file or the single generator is missing
    or the scale count disagrees with the files.
    """
    epoch = "latest"
    opts = read_official_options(config or _g0_path(checkpoint).parent)
    epoch = str(opts.get("which_epoch", epoch))
    g0 = _g0_path(checkpoint, epoch)
    n = int(opts.get("n_scales_spatial", 1))
    sd = {f"G0.{k}": v for k, v in official_state_dict(g0, "official vid2vid generator").items()}
    for s in range(1, n):
        p = g0.parent / g0.name.replace("_net_G0.pth", f"_net_G{s}.pth")
        if not p.is_file():
            raise V2VError(f"n_scales_spatial={n} but scale {s}'s generator is missing: looked for {p}")
        sd.update({f"G{s}.{k}": v for k, v in official_state_dict(p, "official vid2vid generator").items()})
    extra = g0.parent / g0.name.replace("_net_G0.pth", f"_net_G{n}.pth")
    if extra.is_file():
        raise V2VError(f"the options say n_scales_spatial={n} but {extra} exists: the options do not describe "
                       f"these checkpoints")
    want = opts.get("use_single_G") if use_single_G is None else use_single_G
    if want is not False and not opts.get("use_real_img") and not opts.get("no_first_img"):
        load = int(opts.get("loadSize", 1024))
        path, looked = find_single_G(g0, load, first_frame_generator)
        if path is None and (want or first_frame_generator):
            raise V2VError(f"use_single_G: single-image generator not found; looked for "
                           f"{' and '.join(str(p) for p in looked)} (or pass --first-frame-generator PATH)")
        if path is not None:
            single = official_state_dict(path, "single-image generator")
            opts = {**opts, "use_single_G": True, **_single_G_shape(single, load)}
            sd.update({f"single.{k}": v for k, v in single.items()})
    return opts, sd


def _single_G_shape(sd: dict, load_size: int) -> dict:
    """Widths the official code hard-codes, read back from the file (so shrunk fixtures work too)."""
    if "model.1.weight" not in sd:
        raise V2VError("single-image generator: no 'model.1.weight' (not a pix2pixHD generator file)")
    width = int(sd["model.1.weight"].shape[0])
    n_le = len({k.split("_")[0] for k in sd if re.match(r"model\d+_1\.", k)})
    if n_le:
        return {"single_G_ngf": width // 2**n_le, "single_G_n_local_enhancers": n_le}
    return {"single_G_ngf": width}


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], cfg: Vid2VidModelConfig | None = None) -> dict:
    """Official keys (``G<s>.k``, ``single.k``) -> :class:`Vid2VidSystem` keys; pure."""
    out = {}
    for k, v in state_dict.items():
        head, _, rest = k.partition(".")
        if re.fullmatch(r"G\d+", head):
            out[f"netG.scales.{head[1:]}.{rest}"] = v
        elif head == "single":
            out[f"netG_i.{rest}"] = v
        else:
            out[k] = v
    for k in [k for k in out if k.endswith(".running_mean")]:
        out.setdefault(k[: -len("running_mean")] + "num_batches_tracked", torch.tensor(0))
    return out


def load_official(checkpoint: str, config: str | None = None, first_frame_generator: str | None = None,
                  use_single_G: bool | None = None) -> tuple[Vid2VidModelConfig, Vid2VidSystem]:
    """(config, inference :class:`Vid2VidSystem`) from a released folder or ``latest_net_G0.pth``."""
    from v2v.weights_io import check_state_dict

    opts, sd = read_official(checkpoint, config, first_frame_generator, use_single_G)
    cfg = config_from_official(opts)
    system = Vid2VidSystem(cfg, inference=True)
    sd = checkpoint_filter_fn(sd, cfg)
    try:
        check_state_dict(system.state_dict(), sd, str(checkpoint), strict=True, limit=3)
    except V2VError as exc:
        raise V2VError(f"{exc} -- the options (opt.txt) do not describe these checkpoints") from None
    system.load_state_dict(sd)
    return cfg, system.eval()


# ----------------------------------------------------------------------------------------------
# discriminators (one-scale fixtures and convert)
# ----------------------------------------------------------------------------------------------
def map_discriminator_key(key: str, n_layers: int) -> str | None:
    """Official pix2pixHD ``MultiscaleDiscriminator`` key -> :class:`MultiscalePatchDiscriminator` key."""
    m = re.fullmatch(r"scale(\d+)_layer(\d+)\.(\d+)\.(.+)", key)
    if m:
        part = {"0": "conv", "1": "norm"}.get(m.group(3))
        return f"scales.{m.group(1)}.blocks.{m.group(2)}.{part}.{m.group(4)}" if part else None
    m = re.fullmatch(r"layer(\d+)\.(\d+)\.(.+)", key)
    if m:
        i = int(m.group(2))
        if i == 0:
            return f"scales.{m.group(1)}.blocks.0.conv.{m.group(3)}"
        if i == 2 + 3 * n_layers:
            return f"scales.{m.group(1)}.blocks.{n_layers + 1}.conv.{m.group(3)}"
        n, r = divmod(i - 2, 3)
        part = {0: "conv", 1: "norm"}.get(r)
        return f"scales.{m.group(1)}.blocks.{n + 1}.{part}.{m.group(3)}" if part else None
    return None


def load_official_discriminator(pth: str | os.PathLike, cfg: Vid2VidModelConfig, temporal: bool = False):
    """An image (``latest_net_D.pth``) or temporal (``latest_net_D_T<s>.pth``) discriminator."""
    from v2v.weights_io import check_state_dict

    D = build_temporal_discriminator(cfg) if temporal else build_image_discriminator(cfg)
    sd = {}
    for k, v in official_state_dict(pth, "official vid2vid discriminator").items():
        if not k.endswith("num_batches_tracked"):
            sd[map_discriminator_key(k, cfg.n_layers_D) or k] = v
    expected = {k: v for k, v in D.state_dict().items() if not k.endswith("num_batches_tracked")}
    check_state_dict(expected, sd, os.fspath(pth), strict=True, limit=3)
    D.load_state_dict(sd, strict=False)
    return D


def convert(checkpoint: str | os.PathLike, options: str | os.PathLike | None, out_dir: str | os.PathLike,
            with_discriminators: bool = True, first_frame_generator: str | None = None) -> dict:
    """Official folder / G0 file -> ``out_dir/vid2vid.safetensors`` (all scales + the single-image
    generator [+ D, D_T]) and ``out_dir/vid2vid.yaml``. Returns the written paths."""
    from v2v.config import save_yaml, to_dict
    from v2v.weights_io import save_weights

    cfg, system = load_official(os.fspath(checkpoint), options and os.fspath(options), first_frame_generator)
    sd = dict(system.state_dict())
    g0 = _g0_path(checkpoint)
    stem = g0.name.replace("_net_G0.pth", "")
    found = []
    d_path = g0.parent / f"{stem}_net_D.pth"
    if with_discriminators and d_path.is_file():
        sd.update({f"netD.{k}": v for k, v in load_official_discriminator(d_path, cfg).state_dict().items()})
        found.append(str(d_path))
        for s in range(cfg.n_scales_temporal):
            p = g0.parent / f"{stem}_net_D_T{s}.pth"
            if p.is_file():
                DT = load_official_discriminator(p, cfg, temporal=True)
                sd.update({f"netD_T.{s}.{k}": v for k, v in DT.state_dict().items()})
                found.append(str(p))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wpath, cpath = out_dir / "vid2vid.safetensors", out_dir / "vid2vid.yaml"
    save_weights(sd, wpath, metadata={"system": "vid2vid", "source": g0.name, "config": to_dict(cfg),
                                      "discriminators": [Path(f).name for f in found]})
    save_yaml({"system": "vid2vid", "model": to_dict(cfg)}, cpath)
    return {"weights": str(wpath), "config": str(cpath), "discriminators": found}


# ----------------------------------------------------------------------------------------------
# parity
# ----------------------------------------------------------------------------------------------
TOL_SINGLE = 1e-4                            # READMEs: single steps, single-G frames, D outputs
TOL_CHAIN_ONE_SCALE = {"eval": 5e-4, "train": 3e-3}   # one-scale READMEs: free-running 3-step chains
TOL_CHAIN_MULTISCALE = 2e-3                  # multiscale README: free-running chain, every level
_OUT = {"fake_image": "image", "fake_raw_image": "raw_image", "flow": "flow", "weight": "weight",
        "warped_prev": "warped_prev"}
_FEAT = {"img_feat": "img_feat", "flow_feat": "flow_feat", "fg_feat": "fg_feat"}
_D_RE = re.compile(r"^(d|dt(\d+))_(eval|train)_(real|fake)_s(\d+)_l(\d+)$")


def run_parity(fixture_dir: str | os.PathLike, device: str | torch.device = "cpu", chain: bool = True) -> ParityReport:
    """Replay every case of ``fixture_dir/cases.npz`` against the official checkpoints there.

    Options come from ``opt.txt`` / ``options.json`` (``test_time``); nothing is hard-coded. Rows:
    encoding and label pyramid; single-image generator frames and their pyramid; per-scale
    single steps fed the stored previous frames (teacher-forced, 1e-4); free-running chains;
    every stored discriminator output (one-scale fixtures).
    """
    fixture_dir = Path(fixture_dir)
    arr = load_cases(fixture_dir / "cases.npz")
    cfg, system = load_official(str(fixture_dir))
    system = system.to(device)
    rep = ParityReport("vid2vid", str(fixture_dir))
    prefixes = sorted({k[: -len("label_map")] for k in arr if k.endswith("label_map")})
    for p in prefixes:
        _parity_case(rep, system, cfg, {k[len(p):]: v for k, v in arr.items() if k.startswith(p)}, p, device, chain)
    d_keys = sorted(k for k in arr if _D_RE.match(k))
    if d_keys:
        _discriminator_parity(rep, fixture_dir, cfg, arr, d_keys, device)
    return rep


def _parity_case(rep, system, cfg, a, prefix, device, chain):
    n, tG = cfg.n_scales_spatial, cfg.n_frames_G
    multi = "g_eval_G0_fake_image" in a or "g_train_G0_fake_image" in a

    def t(name):
        return torch.from_numpy(a[name]).to(device)

    labels = t("label_map")[:, :, 0].round().long()
    inst = t("inst_map")[:, :, 0].round().long() if cfg.use_instance else None
    enc = encode_labels(labels, inst, cfg.label_nc, cfg.use_instance)
    pyr = list(reversed(label_pyramid(enc, n)))                       # coarse first
    if "real_A" in a:
        rep.compare(f"{prefix}encode real_A", enc, a["real_A"], atol=1e-6)
    for s in range(a["g_in_label"].shape[0] if "g_in_label" in a else 0):
        rep.compare(f"{prefix}encode g_in_label step{s}", pyr[-1][:, s:s + tG].flatten(1, 2), a["g_in_label"][s],
                    atol=1e-6)
    for k in range(n):
        if f"real_A_G{k}" in a:
            rep.compare(f"{prefix}real_A_G{k} (pyramid)", pyr[k], a[f"real_A_G{k}"], atol=1e-5)
    stats = {"eval": "running", "train": "batch"}
    for mode in ("eval", "train"):
        key0 = f"g_{mode}_G{n - 1}_fake_image" if multi else f"g_{mode}_fake_image"
        if key0 not in a:
            continue
        S = a[key0].shape[0]
        # first frames per scale (coarse first): stored single-G frames, or the real frames
        if f"si_{mode}_fake_image" in a:
            si = t(f"si_{mode}_fake_image")                            # i,B,3,H,W
            with torch.no_grad(), norm_statistics(system.netG_i, stats[mode]):
                ours = torch.stack([system.netG_i(enc[:, i, :cfg.label_nc]) for i in range(tG - 1)])
            rep.compare(f"{prefix}single_G {mode} frames", ours, si, atol=TOL_SINGLE)
            levels = list(reversed(label_pyramid(ours[:, 0], n)))
            for k in range(n - 1):
                if f"si_{mode}_prev_G{k}" in a:
                    rep.compare(f"{prefix}single_G {mode} prev_G{k}", levels[k], a[f"si_{mode}_prev_G{k}"], atol=TOL_SINGLE)
            firsts_stored = [[f.unsqueeze(0) for f in (t(f"si_{mode}_prev_G{k}") if k < n - 1 else si[:, 0])]
                             for k in range(n)]
            firsts_ours = [[f.unsqueeze(0) for f in lv] for lv in levels]
        else:
            real = t("real_image")
            firsts_stored = firsts_ours = [list(lv[:, :tG - 1].unbind(1)) for lv in
                                           reversed(label_pyramid(real, n))]

        def stored(k, name, mode=mode):
            return t(f"g_{mode}_G{k}_{name}" if multi else f"g_{mode}_{name}")

        def run(s, prevs, mode=mode):
            lab = [pyr[k][:, s:s + tG].flatten(1, 2) for k in range(n)]
            masks = [foreground_mask(pyr[k][:, s + tG - 1], cfg.fg_labels) for k in range(n)] if cfg.fg else None
            with torch.no_grad(), norm_statistics(system.netG, stats[mode]):
                return system.netG(lab, [torch.cat(q[s:s + tG - 1], 1) for q in prevs], masks)

        teacher = [firsts_stored[k] + list(stored(k, "fake_image").unbind(0)) for k in range(n)]
        for s in range(S):
            outs = run(s, teacher)
            for k, o in enumerate(outs):
                g = f"G{k} " if multi else ""
                for off, ours in _OUT.items():
                    name = f"g_{mode}_G{k}_{off}" if multi else f"g_{mode}_{off}"
                    if name in a and ours in o:
                        rep.compare(f"{prefix}{g}{mode} step{s} {off}", o[ours], a[name][s], atol=TOL_SINGLE)
                for off, ours in _FEAT.items():
                    name = f"g_{mode}_G{k}_{off}_step0"
                    if s == 0 and name in a:
                        rep.compare(f"{prefix}G{k} {mode} step0 {off}", o[ours], a[name], atol=TOL_SINGLE)
            if s == 0 and f"g_{mode}_downsample_step0" in a:
                rep.compare(f"{prefix}{mode} step0 downsample", outs[-1]["down"], a[f"g_{mode}_downsample_step0"],
                            atol=TOL_SINGLE)
        if not chain:
            continue
        tol = TOL_CHAIN_MULTISCALE if multi else TOL_CHAIN_ONE_SCALE[mode]
        free = [list(f) for f in firsts_ours]
        for s in range(S):
            outs = run(s, free)
            for k, o in enumerate(outs):
                free[k].append(o["image"])
                g = f"G{k} " if multi else ""
                for off, ours in _OUT.items():
                    name = f"g_{mode}_G{k}_{off}" if multi else f"g_{mode}_{off}"
                    if name in a and ours in o:
                        rep.compare(f"{prefix}{g}{mode} chain step{s} {off}", o[ours], a[name][s], atol=tol)


def _discriminator_parity(rep, fixture_dir, cfg, arr, d_keys, device):
    epoch = "latest"
    tD = cfg.n_frames_D
    real = torch.from_numpy(arr["real_image"]).to(device)
    labels = torch.from_numpy(arr["label_map"])[:, :, 0].round().long()
    inst = torch.from_numpy(arr["inst_map"])[:, :, 0].round().long() if cfg.use_instance else None
    enc = encode_labels(labels, inst, cfg.label_nc, cfg.use_instance).to(device)
    fake_eval = torch.from_numpy(arr["g_eval_fake_image"]).to(device)      # S,B,3,H,W
    S, T = fake_eval.shape[0], real.shape[1]
    groups = {}
    for k in d_keys:
        m = _D_RE.match(k)
        groups.setdefault(m.group(1), []).append((k, m))
    for which, items in groups.items():
        if which == "d":
            net = load_official_discriminator(fixture_dir / f"{epoch}_net_D.pth", cfg).to(device)
            nb = arr[items[0][0]].shape[0]
            lab = enc[:, T - nb:].flatten(0, 1)
            real_in = torch.cat([lab, real[:, T - nb:].flatten(0, 1)], 1)
            fake_in = torch.cat([lab, fake_eval[S - nb:].transpose(0, 1).flatten(0, 1)], 1)
            name = "D"
        else:
            net = load_official_discriminator(fixture_dir / f"{epoch}_net_D_T{which[2:]}.pth", cfg,
                                              temporal=True).to(device)
            flow_ref = torch.from_numpy(arr["dt_flow_ref"]).to(device)
            B, _, _, H, W = flow_ref.shape
            fl = flow_ref.reshape(B, -1, H, W) / 20.0
            real_in = torch.cat([real[:, T - tD:].reshape(B, -1, H, W), fl], 1)
            fake_in = torch.cat([fake_eval[S - tD:].transpose(0, 1).reshape(B, -1, H, W), fl], 1)
            name = f"D_T{which[2:]}"
        for mode in ("eval", "train"):
            with torch.no_grad(), norm_statistics(net, "running" if mode == "eval" else "batch"):
                preds = {"real": net(real_in), "fake": net(fake_in)}
            for k, m in items:
                if m.group(3) == mode:
                    got = preds[m.group(4)][int(m.group(5))]
                    j = int(m.group(6))
                    rep.compare(f"{name} {mode} {m.group(4)} s{m.group(5)} l{j}", got[j] if len(got) > 1 else got[-1],
                                arr[k], atol=TOL_SINGLE)
