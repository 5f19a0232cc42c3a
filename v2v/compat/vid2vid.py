"""NVIDIA/vid2vid compatibility: option files, state-dict key maps, loaders, converter, parity runner.

- :func:`read_official_options` reads ``opt.txt`` (the official ``BaseOptions.parse`` dump) or
  ``options.json``; :func:`v2v.models.vid2vid.config_from_official_options` turns it into our config.
- :func:`map_generator_key` / :func:`map_discriminator_key` translate official ``netG0`` /
  ``netD`` / ``netD_T<s>`` keys to ours (in the way timm's checkpoint filter functions do).
- :func:`load_official_generator` / :func:`load_official_discriminator` read official ``.pth``
  files (``weights_only=True``, CPU, ``module.`` stripped, ``num_batches_tracked`` optional).
- :func:`convert` writes a v2v safetensors checkpoint + YAML config.
- :func:`run_parity` replays every case of a fixture directory's ``cases.npz``.

Official key structure (``CompositeGenerator``, nn.Sequential indices): ``model_down_seg`` /
``model_down_img``: ``.1`` conv7x7, ``.2`` norm, ``.{4+3i}`` / ``.{5+3i}`` downsampling conv / norm,
``.{4+3n_down+b}.conv_block.{1,2,5,6}`` ResnetBlocks; ``model_res_img|flow.{b}.conv_block.*``;
``model_up_img|flow.{3i}`` / ``.{3i+1}`` convT / norm; ``model_final_img|flow|w.1`` conv7x7;
with ``--fg``: ``indv_down`` (as model_down_seg without ResnetBlocks), ``indv_res.{b}``,
``indv_up.{3i}``, ``indv_final.1``. D: ``scale{k}_layer{j}.0`` conv / ``.1`` norm (with GAN
feature matching) or ``layer{k}.{i}`` (without).
"""
from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import numpy as np
import torch

from v2v.compat.common import official_state_dict
from v2v.errors import V2VError
from v2v.models.vid2vid import (
    Vid2VidModelConfig,
    build_generator,
    build_image_discriminator,
    build_temporal_discriminator,
    config_from_official_options,
    encode_labels,
    foreground_mask,
    norm_statistics,
)

__all__ = [
    "convert",
    "is_official_options",
    "load_into",
    "load_official_discriminator",
    "load_official_generator",
    "load_official_state",
    "map_discriminator_key",
    "map_generator_key",
    "official_config",
    "read_official_options",
    "run_parity",
]

_BLOCK = {"1": "conv1", "2": "norm1", "5": "conv2", "6": "norm2"}


# ----------------------------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------------------------
def _parse_value(text: str):
    t = text.strip()
    if t == "":
        return ""
    if t in ("True", "False"):
        return t == "True"
    if t == "inf":
        return float("inf")
    try:
        return ast.literal_eval(t)
    except (ValueError, SyntaxError):
        return t


def is_official_options(path: str | os.PathLike) -> bool:
    """True for an official ``opt.txt`` / ``options.json`` (or a folder holding one)."""
    p = Path(path)
    if p.is_dir():
        return (p / "opt.txt").is_file() or (p / "options.json").is_file()
    if p.suffix == ".json":
        return True
    if p.suffix == ".txt":
        try:
            return "------------ Options -------------" in p.read_text(errors="replace")[:200]
        except OSError:
            return False
    return False


def read_official_options(path: str | os.PathLike) -> dict:
    """Read an official option dump: ``opt.txt``, ``options.json`` or a folder with either.

    Returns the options as a dict with official names and Python values.
    """
    p = Path(path)
    if p.is_dir():
        for name in ("opt.txt", "options.json"):
            if (p / name).is_file():
                return read_official_options(p / name)
        raise V2VError(f"{p}: no opt.txt or options.json in this folder")
    if not p.is_file():
        raise V2VError(f"official options file not found: {p}")
    if p.suffix == ".json":
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise V2VError(f"{p}: invalid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise V2VError(f"{p}: expected a JSON object of official options")
        return data
    opts = {}
    for line in p.read_text(errors="replace").splitlines():
        if line.startswith("---") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        opts[k.strip()] = _parse_value(v)
    if "label_nc" not in opts:
        raise V2VError(f"{p}: not an official vid2vid option dump (no 'label_nc' line)")
    return opts


def official_config(path: str | os.PathLike) -> Vid2VidModelConfig:
    """Our model config from an official ``opt.txt`` / ``options.json`` / fixture folder."""
    return config_from_official_options(read_official_options(path))


# ----------------------------------------------------------------------------------------------
# key maps
# ----------------------------------------------------------------------------------------------
def _encoder_key(rest: str, n_down: int, prefix: str) -> str | None:
    m = re.fullmatch(r"(\d+)\.(.+)", rest)
    if not m:
        return None
    i, tail = int(m.group(1)), m.group(2)
    if i == 1:
        return f"{prefix}.stem.conv.{tail}"
    if i == 2:
        return f"{prefix}.stem.norm.{tail}"
    if 4 <= i < 4 + 3 * n_down:
        j, r = divmod(i - 4, 3)
        part = {0: "conv", 1: "norm"}.get(r)
        return f"{prefix}.down.{j}.{part}.{tail}" if part else None
    b = i - (4 + 3 * n_down)
    m2 = re.fullmatch(r"conv_block\.(\d+)\.(.+)", tail)
    if b >= 0 and m2 and m2.group(1) in _BLOCK:
        return f"{prefix}.blocks.{b}.{_BLOCK[m2.group(1)]}.{m2.group(2)}"
    return None


def _res_key(rest: str, prefix: str) -> str | None:
    m = re.fullmatch(r"(\d+)\.conv_block\.(\d+)\.(.+)", rest)
    if not m or m.group(2) not in _BLOCK:
        return None
    return f"{prefix}.blocks.{m.group(1)}.{_BLOCK[m.group(2)]}.{m.group(3)}"


def _up_key(rest: str, prefix: str) -> str | None:
    m = re.fullmatch(r"(\d+)\.(.+)", rest)
    if not m:
        return None
    j, r = divmod(int(m.group(1)), 3)
    part = {0: "conv", 1: "norm"}.get(r)
    return f"{prefix}.up.{j}.{part}.{m.group(2)}" if part else None


def map_generator_key(key: str, n_downsample: int) -> str | None:
    """Official ``netG0`` key -> our :class:`CompositeGenerator` key (None if unknown)."""
    key = key.removeprefix("module.")
    head, _, rest = key.partition(".")
    if head == "model_down_seg":
        return _encoder_key(rest, n_downsample, "label_encoder")
    if head == "model_down_img":
        return _encoder_key(rest, n_downsample, "prev_encoder")
    if head == "indv_down":
        return _encoder_key(rest, n_downsample, "fg_encoder")
    res = {"model_res_img": "image_branch", "model_res_flow": "flow_branch", "indv_res": "fg_branch"}
    if head in res:
        return _res_key(rest, res[head])
    up = {"model_up_img": "image_branch", "model_up_flow": "flow_branch", "indv_up": "fg_branch"}
    if head in up:
        return _up_key(rest, up[head])
    final = {"model_final_img": "image_head", "model_final_flow": "flow_head", "model_final_w": "weight_head",
             "indv_final": "fg_head"}
    if head in final and rest.startswith("1."):
        return f"{final[head]}.conv.{rest[2:]}"
    return None


def map_discriminator_key(key: str, n_layers: int) -> str | None:
    """Official pix2pixHD ``MultiscaleDiscriminator`` key -> :class:`MultiscalePatchDiscriminator` key."""
    key = key.removeprefix("module.")
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


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------
def load_official_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an official ``.pth`` (plain state dict, legacy or zip container) on CPU, weights only."""
    return official_state_dict(path, what="official checkpoint")


def load_into(module: torch.nn.Module, official: dict[str, torch.Tensor], mapper, path: str) -> None:
    """Map official keys with ``mapper`` and strictly load into ``module``.

    ``num_batches_tracked`` buffers are optional on both sides. Raises V2VError naming the
    first unknown / missing / shape-mismatched keys (a checkpoint/options mismatch).
    """
    from v2v.weights_io import check_state_dict

    mapped = {}
    for k, v in official.items():
        if k.endswith("num_batches_tracked"):
            continue
        nk = mapper(k)
        mapped[nk if nk is not None else k] = v  # an unmapped key is reported under its official name
    expected = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    try:
        check_state_dict(expected, mapped, path, strict=True, limit=3)
    except V2VError as exc:
        raise V2VError(f"{exc} -- the options (opt.txt / config) do not describe this checkpoint") from None
    with torch.no_grad():
        module.load_state_dict(mapped, strict=False)


def load_official_generator(pth: str | os.PathLike, options: str | os.PathLike | dict | Vid2VidModelConfig):
    """(config, generator) from an official ``latest_net_G0.pth`` and its options."""
    cfg = options if isinstance(options, Vid2VidModelConfig) else (
        config_from_official_options(options) if isinstance(options, dict) else official_config(options))
    G = build_generator(cfg)
    load_into(G, load_official_state(pth), lambda k: map_generator_key(k, cfg.n_downsample_G), os.fspath(pth))
    return cfg, G


def load_official_discriminator(pth: str | os.PathLike, cfg: Vid2VidModelConfig, temporal: bool = False):
    """An image (``latest_net_D.pth``) or temporal (``latest_net_D_T<s>.pth``) discriminator."""
    D = build_temporal_discriminator(cfg) if temporal else build_image_discriminator(cfg)
    load_into(D, load_official_state(pth), lambda k: map_discriminator_key(k, cfg.n_layers_D), os.fspath(pth))
    return D


def convert(g_pth: str | os.PathLike, options: str | os.PathLike, out_dir: str | os.PathLike,
            with_discriminators: bool = True) -> dict[str, str]:
    """Convert an official generator (and, if found beside it, its D / D_T files) to v2v format.

    Writes ``out_dir/vid2vid.safetensors`` (keys ``netG.*`` [+ ``netD.*``, ``netD_T.<s>.*``], the
    layout of a :class:`Vid2VidSystem` state dict) and ``out_dir/vid2vid.yaml`` (``system`` +
    ``model`` section). Returns the written paths.
    """
    from v2v.config import save_yaml, to_dict
    from v2v.weights_io import save_weights

    cfg, G = load_official_generator(g_pth, options)
    sd = {f"netG.{k}": v for k, v in G.state_dict().items()}
    folder = Path(g_pth).parent
    stem = Path(g_pth).name.replace("_net_G0.pth", "")
    d_path = folder / f"{stem}_net_D.pth"
    found = []
    if with_discriminators and d_path.is_file() and stem != Path(g_pth).name:
        D = load_official_discriminator(d_path, cfg)
        sd.update({f"netD.{k}": v for k, v in D.state_dict().items()})
        found.append(str(d_path))
        for s in range(cfg.n_scales_temporal):
            p = folder / f"{stem}_net_D_T{s}.pth"
            if p.is_file():
                DT = load_official_discriminator(p, cfg, temporal=True)
                sd.update({f"netD_T.{s}.{k}": v for k, v in DT.state_dict().items()})
                found.append(str(p))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wpath, cpath = out_dir / "vid2vid.safetensors", out_dir / "vid2vid.yaml"
    save_weights(sd, wpath, metadata={"system": "vid2vid", "source": Path(g_pth).name,
                                      "discriminators": [Path(f).name for f in found]})
    save_yaml({"system": "vid2vid", "model": to_dict(cfg)}, cpath)
    return {"weights": str(wpath), "config": str(cpath), "discriminators": found}


# ----------------------------------------------------------------------------------------------
# parity
# ----------------------------------------------------------------------------------------------
TOL_SINGLE = 1e-4          # README: single-step (teacher-forced) generator outputs and every D output
TOL_CHAIN = {"eval": 5e-4, "train": 3e-3}   # README: free-running 3-step chains (errors feed back)
_G_OUTPUTS = {"fake_image": "image", "fake_raw_image": "raw_image", "flow": "flow", "weight": "weight",
              "warped_prev": "warped_prev"}
_D_RE = re.compile(r"^(d|dt(\d+))_(eval|train)_(real|fake)_s(\d+)_l(\d+)$")


def _maxabs(a, b) -> float:
    a = torch.as_tensor(np.asarray(a, dtype=np.float32)) if not torch.is_tensor(a) else a.detach().float().cpu()
    b = torch.as_tensor(np.asarray(b, dtype=np.float32)) if not torch.is_tensor(b) else b.detach().float().cpu()
    if a.shape != b.shape:
        raise V2VError(f"parity: shape {tuple(a.shape)} vs expected {tuple(b.shape)}")
    return float((a - b).abs().max()) if a.numel() else 0.0


def run_parity(fixture_dir: str | os.PathLike, device: str | torch.device = "cpu", chain: bool = True):
    """Replay every case of ``fixture_dir/cases.npz`` against the official checkpoints there.

    Options come from ``opt.txt`` (or ``options.json``) in the folder; nothing is hardcoded.
    Returns a list of ``(name, max_abs_error, tolerance)``. Cases:

    - ``encode/real_A``, ``encode/g_in_label``: one-hot + instance edges (tol 1e-6);
    - ``G <mode> step<s> <output>`` for mode eval (running BN stats) and train (per-image BN
      statistics = official test.py): single steps fed the stored previous frames (tol 1e-4);
      ``G eval down step0``: the encoder sum;
    - ``G <mode> chain step<s> <output>``: the free-running chain from the real first frames
      (tol 5e-4 eval / 3e-3 train, README);
    - ``D ...`` / ``D_T<s> ...``: every stored image-D and temporal-D output, intermediate
      features included (tol 1e-4).
    """
    fixture_dir = Path(fixture_dir)
    cases_path = fixture_dir / "cases.npz"
    if not cases_path.is_file():
        raise V2VError(f"{fixture_dir}: no cases.npz (expected an official vid2vid fixture folder)")
    opts = read_official_options(fixture_dir)
    cfg = config_from_official_options(opts)
    device = torch.device(device)
    g_path = fixture_dir / f"{opts.get('which_epoch', 'latest')}_net_G0.pth"
    if not g_path.is_file():
        g_path = fixture_dir / "latest_net_G0.pth"
    _, G = load_official_generator(g_path, cfg)
    G = G.to(device).eval()
    z = np.load(cases_path)
    arr = {k: z[k] for k in z.files}
    results = []

    def t(name):
        return torch.from_numpy(arr[name]).to(device)

    labels = t("label_map")[:, :, 0].round().long()          # B,T,H,W
    inst = t("inst_map")[:, :, 0].round().long() if cfg.use_instance else None
    real = t("real_image")                                     # B,T,3,H,W in [-1,1]
    enc = encode_labels(labels, inst, cfg.label_nc, cfg.use_instance)
    if "real_A" in arr:
        results.append(("encode real_A", _maxabs(enc, arr["real_A"]), 1e-6))
    tG = cfg.n_frames_G
    S = arr["g_eval_fake_image"].shape[0] if "g_eval_fake_image" in arr else 0
    if "g_in_label" in arr:
        for s in range(S):
            lab = enc[:, s:s + tG].flatten(1, 2)
            results.append((f"encode g_in_label step{s}", _maxabs(lab, arr["g_in_label"][s]), 1e-6))

    stats = {"eval": "running", "train": "batch"}
    for mode in ("eval", "train"):
        if f"g_{mode}_fake_image" not in arr:
            continue
        stored = t(f"g_{mode}_fake_image")                       # S,B,3,H,W

        def prev_frames(s, produced):
            frames = [real[:, i] for i in range(tG - 1)] + [produced[i] for i in range(s)]
            return torch.cat(frames[s:s + tG - 1], 1)

        for s in range(S):
            lab = enc[:, s:s + tG].flatten(1, 2)
            prev = prev_frames(s, stored)
            mask = foreground_mask(enc[:, s + tG - 1], cfg.fg_labels) if cfg.fg else None
            with torch.no_grad(), norm_statistics(G, stats[mode]):
                out = G(lab, prev, mask, return_features=True)
            for off, ours in _G_OUTPUTS.items():
                key = f"g_{mode}_{off}"
                if key in arr and ours in out:
                    results.append((f"G {mode} step{s} {off}", _maxabs(out[ours], arr[key][s]), TOL_SINGLE))
            if s == 0 and f"g_{mode}_downsample_step0" in arr:
                results.append((f"G {mode} step0 downsample", _maxabs(out["down"], arr[f"g_{mode}_downsample_step0"]),
                                TOL_SINGLE))
        if chain:
            produced = []
            for s in range(S):
                lab = enc[:, s:s + tG].flatten(1, 2)
                prev = prev_frames(s, produced)
                mask = foreground_mask(enc[:, s + tG - 1], cfg.fg_labels) if cfg.fg else None
                with torch.no_grad(), norm_statistics(G, stats[mode]):
                    out = G(lab, prev, mask)
                produced.append(out["image"])
                for off, ours in _G_OUTPUTS.items():
                    key = f"g_{mode}_{off}"
                    if key in arr and ours in out:
                        results.append((f"G {mode} chain step{s} {off}", _maxabs(out[ours], arr[key][s]),
                                        TOL_CHAIN[mode]))

    d_keys = sorted(k for k in arr if _D_RE.match(k))
    if d_keys:
        results += _discriminator_parity(fixture_dir, opts, cfg, arr, enc, real, d_keys, device)
    return results


def _discriminator_parity(fixture_dir, opts, cfg, arr, enc, real, d_keys, device):
    epoch = opts.get("which_epoch", "latest")
    out = []
    tD = cfg.n_frames_D
    # image D: the last 2 generated frames (N=2) vs their real counterparts
    fake_eval = torch.from_numpy(arr["g_eval_fake_image"]).to(device)      # S,B,3,H,W
    S = fake_eval.shape[0]
    T = real.shape[1]
    groups = {}
    for k in d_keys:
        m = _D_RE.match(k)
        groups.setdefault(m.group(1), []).append((k, m))
    nets = {}
    for which in groups:
        if which == "d":
            path = fixture_dir / f"{epoch}_net_D.pth"
            nets[which] = load_official_discriminator(path, cfg).to(device)
        else:
            s = int(which[2:])
            path = fixture_dir / f"{epoch}_net_D_T{s}.pth"
            nets[which] = load_official_discriminator(path, cfg, temporal=True).to(device)
    for which, items in groups.items():
        net = nets[which]
        if which == "d":
            n = arr[items[0][0]].shape[0]
            lab = enc[:, T - n:].flatten(0, 1)
            real_in = torch.cat([lab, real[:, T - n:].flatten(0, 1)], 1)
            fake_in = torch.cat([lab, fake_eval[S - n:].transpose(0, 1).flatten(0, 1)], 1)
            name = "D"
        else:
            flow_ref = torch.from_numpy(arr["dt_flow_ref"]).to(device)      # B,tD-1,2,H,W
            B, _, _, H, W = flow_ref.shape
            fl = flow_ref.reshape(B, -1, H, W) / 20.0
            real_in = torch.cat([real[:, T - tD:].reshape(B, -1, H, W), fl], 1)
            fk = fake_eval[S - tD:].transpose(0, 1)
            fake_in = torch.cat([fk.reshape(B, -1, H, W), fl], 1)
            name = f"D_T{which[2:]}"
        for mode in ("eval", "train"):
            with torch.no_grad(), norm_statistics(net, "running" if mode == "eval" else "batch"):
                preds = {"real": net(real_in), "fake": net(fake_in)}
            for k, m in items:
                if m.group(3) != mode:
                    continue
                i, j = int(m.group(5)), int(m.group(6))
                got = preds[m.group(4)][i]
                got = got[j] if len(got) > 1 else got[-1]
                out.append((f"{name} {mode} {m.group(4)} s{i} l{j}", _maxabs(got, arr[k]), TOL_SINGLE))
    return out
