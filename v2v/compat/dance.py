"""Everybody Dance Now official checkpoints: options, key maps, loaders and the parity runner.

Official files (``BaseModel.save_network``): ``<epoch>_net_G.pth`` (GlobalGenerator or
LocalEnhancer), ``_net_D.pth`` (MultiscaleDiscriminator), ``_net_Dface.pth`` (NLayer, BatchNorm),
``_net_Gface.pth`` (face residual generator, global or unet); bare state dicts, loaded with
``torch.load(f, map_location="cpu", weights_only=True)``. Options come from the ``opt.txt`` that
``BaseOptions.parse()`` writes (or a ``config.json`` with an ``options`` mapping). Face widths are
read from the checkpoint shapes (the official code hard-codes 64). Loaders drop InstanceNorm
running buffers (torch 0.3 checkpoints) and tolerate a missing ``num_batches_tracked``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import replace

import numpy as np
import torch

from v2v.compat.common import official_state_dict
from v2v.errors import V2VError
from v2v.models.dance import DanceModelConfig, DanceSystem

__all__ = [
    "PARITY_TOLERANCES",
    "config_from_opt",
    "convert",
    "load_official",
    "map_generator_keys",
    "map_global_keys",
    "map_local_keys",
    "map_multiscale_d_keys",
    "map_nlayer_flat_keys",
    "map_unet_keys",
    "read_opt",
    "run_parity",
]


# ----------------------------------------------------------------------------------- options


def _parse_value(v: str):
    v = v.strip()
    if v in ("True", "False"):
        return v == "True"
    if v.startswith("[") and v.endswith("]"):
        inner = v[1:-1].strip()
        return [_parse_value(x) for x in inner.split(",")] if inner else []
    for tp in (int, float):
        try:
            return tp(v)
        except ValueError:
            pass
    return v


def read_opt(path_or_dir: str | os.PathLike) -> dict:
    """Official options from ``opt.txt`` (``name: value`` lines) or ``config.json["options"]``.

    ``path_or_dir``: the file, or a folder holding ``opt.txt`` or ``config.json``."""
    p = os.fspath(path_or_dir)
    if os.path.isdir(p):
        for name in ("opt.txt", "config.json"):
            if os.path.isfile(os.path.join(p, name)):
                p = os.path.join(p, name)
                break
        else:
            raise V2VError(f"{p}: no opt.txt or config.json with the official options")
    if not os.path.isfile(p):
        raise V2VError(f"options file not found: {p}")
    if p.endswith(".json"):
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
        opts = data.get("options", data)
        if not isinstance(opts, dict):
            raise V2VError(f"{p}: expected an 'options' mapping")
        return dict(opts)
    opts = {}
    with open(p, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("---") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            opts[k.strip()] = _parse_value(v)
    if "netG" not in opts:
        raise V2VError(f"{p}: not an official opt.txt (no 'netG' option)")
    return opts


def config_from_opt(opt: dict, G_sd: dict | None = None, Gface_sd: dict | None = None,
                    Dface_sd: dict | None = None) -> DanceModelConfig:
    """Our model config from official options (+ face widths from checkpoint shapes when given)."""
    g = lambda k, d=None: opt.get(k, d)
    label_nc = int(g("label_nc", 6))
    output_nc = int(g("output_nc", 3))
    if not g("no_instance", True):
        raise V2VError("official option no_instance=False (instance maps) is not used by Everybody Dance Now")
    cfg = DanceModelConfig(
        netG=str(g("netG", "global")), label_channels=label_nc - output_nc, output_nc=output_nc,
        ngf=int(g("ngf", 64)), n_downsample_global=int(g("n_downsample_global", 4)),
        n_blocks_global=int(g("n_blocks_global", 9)), n_blocks_local=int(g("n_blocks_local", 3)),
        norm=str(g("norm", "instance")), face_generator=bool(g("face_generator", False)),
        face_gtype=str(g("faceGtype", "unet")), face_discrim=bool(g("face_discrim", False)),
        ndf=int(g("ndf", 64)), n_layers_D=int(g("n_layers_D", 3)), num_D=int(g("num_D", 2)),
        gan_feat=not bool(g("no_ganFeat_loss", False)), gan_mode="vanilla" if g("no_lsgan", False) else "lsgan",
        lambda_feat=float(g("lambda_feat", 10.0)), vgg=not bool(g("no_vgg_loss", False)),
        l1_weight=float(g("lambda_A", 10.0)) if g("use_l1", False) else 0.0,
        train_face_only=bool(g("face_generator", False)))
    if cfg.netG == "local" and int(g("n_local_enhancers", 1)) != 1:
        raise V2VError(f"official option n_local_enhancers={g('n_local_enhancers')}: only 1 is supported")
    if G_sd is not None and cfg.netG == "global" and "model.1.weight" in G_sd:
        cfg = replace(cfg, ngf=int(G_sd["model.1.weight"].shape[0]))
    if Gface_sd is not None:
        if any(k.startswith("model.model.") for k in Gface_sd):
            cfg = replace(cfg, face_gtype="unet", face_generator=True,
                          face_ngf=int(Gface_sd["model.model.0.weight"].shape[0]))
        elif "model.1.weight" in Gface_sd:
            nb = len({k.split(".")[1] for k in Gface_sd if ".conv_block." in k})
            cfg = replace(cfg, face_gtype="global", face_generator=True,
                          face_ngf=int(Gface_sd["model.1.weight"].shape[0]), face_n_blocks=nb)
    if Dface_sd is not None and "facemodel.0.weight" in Dface_sd:
        cfg = replace(cfg, face_ndf=int(Dface_sd["facemodel.0.weight"].shape[0]), face_discrim=True)
    return cfg


# ---------------------------------------------------------------------------------- key maps


def map_global_keys(sd: dict, n_down: int, n_blocks: int, prefix: str = "", out_prefix: str = "",
                    final: bool = True) -> dict:
    """Official GlobalGenerator ``model.{i}`` keys -> ours (``stem``, ``down``, ``blocks``, ``up``, ``head``)."""
    m = {1: "stem.conv"}
    for k in range(n_down):
        m[4 + 3 * k] = f"down.{k}.conv"
    for k in range(n_down):
        m[4 + 3 * n_down + n_blocks + 3 * k] = f"up.{k}.conv"
    if final:
        m[5 + 6 * n_down + n_blocks] = "head"
    rb0 = 4 + 3 * n_down
    out = {}
    rx = re.compile(r"^" + re.escape(prefix) + r"model\.(\d+)\.(.+)$")
    for key, v in sd.items():
        mm = rx.match(key)
        if not mm:
            continue
        i, rest = int(mm.group(1)), mm.group(2)
        if rb0 <= i < rb0 + n_blocks:
            cb = re.match(r"conv_block\.(\d+)\.(.+)$", rest)
            if cb and cb.group(1) in ("1", "5"):
                out[f"{out_prefix}blocks.{i - rb0}.{'conv1' if cb.group(1) == '1' else 'conv2'}.{cb.group(2)}"] = v
            continue  # IN running buffers of conv_block.{2,6} (torch 0.3) are dropped
        if i in m and (rest in ("weight", "bias")):
            out[f"{out_prefix}{m[i]}.{rest}"] = v
    return out


def map_local_keys(sd: dict, n_down: int, n_blocks: int, n_blocks_local: int, out_prefix: str = "") -> dict:
    """Official LocalEnhancer (``model.*``, ``model1_1.*``, ``model1_2.*``) -> ours."""
    out = map_global_keys(sd, n_down, n_blocks, "", out_prefix + "global_net.", final=False)
    for key, v in sd.items():
        mm = re.match(r"^model1_1\.(\d+)\.(weight|bias)$", key)
        if mm:
            i = int(mm.group(1))
            name = {1: "front_stem.conv", 4: "front_down.conv"}.get(i)
            if name:
                out[f"{out_prefix}{name}.{mm.group(2)}"] = v
            continue
        mm = re.match(r"^model1_2\.(\d+)\.(.+)$", key)
        if mm:
            i, rest = int(mm.group(1)), mm.group(2)
            if i < n_blocks_local:
                cb = re.match(r"conv_block\.(1|5)\.(weight|bias)$", rest)
                if cb:
                    out[f"{out_prefix}blocks.{i}.{'conv1' if cb.group(1) == '1' else 'conv2'}.{cb.group(2)}"] = v
            elif i == n_blocks_local and rest in ("weight", "bias"):
                out[f"{out_prefix}back_up.conv.{rest}"] = v
            elif i == n_blocks_local + 4 and rest in ("weight", "bias"):
                out[f"{out_prefix}head.{rest}"] = v
    return out


def map_unet_keys(sd: dict, out_prefix: str = "", levels: int = 5) -> dict:
    """Official UnetGenerator (nested ``model.model.{...}``) -> ours (``net.down``, ``net.sub...``)."""
    out = {}
    off = "model.model."
    ours = out_prefix + "net."
    for lvl in range(levels):
        if lvl == 0:
            real = {0: "down", 3: "up"}
        elif lvl == levels - 1:
            real = {1: "down", 3: "up", 4: "up_norm"}
        else:
            real = {1: "down", 2: "down_norm", 5: "up", 6: "up_norm"}
        for key, v in sd.items():
            if not key.startswith(off):
                continue
            rest = key[len(off):].split(".")
            if len(rest) == 2 and int(rest[0]) in real:
                out[f"{ours}{real[int(rest[0])]}.{rest[1]}"] = v
        off = f"{off}{1 if lvl == 0 else 3}.model."
        ours = ours + "sub."
    return out


def map_nlayer_flat_keys(sd: dict, n_layers: int, prefix: str, out_prefix: str) -> dict:
    """A flat NLayerDiscriminator Sequential (``{prefix}{i}``) -> ``{out_prefix}blocks.{j}.(conv|norm)``."""
    m = {0: "blocks.0.conv"}
    for n in range(1, n_layers + 1):
        m[2 + 3 * (n - 1)] = f"blocks.{n}.conv"
        m[3 + 3 * (n - 1)] = f"blocks.{n}.norm"
    m[2 + 3 * n_layers] = f"blocks.{n_layers + 1}.conv"
    out = {}
    rx = re.compile(r"^" + re.escape(prefix) + r"(\d+)\.(.+)$")
    for key, v in sd.items():
        mm = rx.match(key)
        if mm and int(mm.group(1)) in m:
            out[f"{out_prefix}{m[int(mm.group(1))]}.{mm.group(2)}"] = v
    return out


def map_multiscale_d_keys(sd: dict, num_D: int, n_layers: int, interm: bool, out_prefix: str = "") -> dict:
    """Official MultiscaleDiscriminator -> ours (``scales.{s}.blocks.{j}.(conv|norm)``)."""
    out = {}
    for s in range(num_D):
        if interm:
            for key, v in sd.items():
                mm = re.match(rf"^scale{s}_layer(\d+)\.(0|1)\.(.+)$", key)
                if mm:
                    out[f"{out_prefix}scales.{s}.blocks.{mm.group(1)}.{'conv' if mm.group(2) == '0' else 'norm'}."
                        f"{mm.group(3)}"] = v
        else:
            out.update(map_nlayer_flat_keys(sd, n_layers, f"layer{s}.", f"{out_prefix}scales.{s}."))
    return out


def map_generator_keys(sd: dict, cfg: DanceModelConfig, which: str = "G") -> dict:
    """Official ``G`` or ``Gface`` state dict -> keys of our :class:`DanceGenerator`."""
    if which == "G":
        if cfg.netG == "global":
            return map_global_keys(sd, cfg.n_downsample_global, cfg.n_blocks_global, "", "net.")
        return map_local_keys(sd, cfg.n_downsample_global, cfg.n_blocks_global, cfg.n_blocks_local, "net.")
    if cfg.face_gtype == "global":
        return map_global_keys(sd, cfg.face_n_downsample, cfg.face_n_blocks, "", "face.")
    return map_unet_keys(sd, "face.")


# ------------------------------------------------------------------------------------ loading


def _load_pth(path: str) -> dict:
    return official_state_dict(path, require_tensors=False)


def _assign(module: torch.nn.Module, mapped: dict, path: str, what: str) -> None:
    expected = module.state_dict()
    missing = []
    for k, t in expected.items():
        if k not in mapped:
            if k.endswith("num_batches_tracked"):
                mapped[k] = torch.zeros((), dtype=torch.long)  # torch 0.4.0 checkpoints lack it
            else:
                missing.append(k)
        elif tuple(mapped[k].shape) != tuple(t.shape):
            raise V2VError(f"{path}: {what} tensor for '{k}' has shape {tuple(mapped[k].shape)}, the model "
                           f"built from the options expects {tuple(t.shape)} (options and checkpoint disagree)")
    if missing:
        raise V2VError(f"{path}: {what} lacks {len(missing)} tensors the options imply, e.g. "
                       f"{', '.join(missing[:3])} (wrong opt.txt, or not a {what} checkpoint?)")
    module.load_state_dict({k: mapped[k] for k in expected}, strict=True)


def find_checkpoint(folder: str, name: str, epoch: str = "latest") -> str | None:
    p = os.path.join(folder, f"{epoch}_net_{name}.pth")
    return p if os.path.isfile(p) else None


def load_official(folder: str | os.PathLike, opt: dict | str | None = None, epoch: str = "latest",
                  with_discriminators: bool = True, build_losses: bool = False) -> DanceSystem:
    """Build a :class:`DanceSystem` from an official checkpoint folder (``<epoch>_net_G.pth`` and,
    when present, ``_Gface``, ``_D``, ``_Dface``). ``opt`` = options dict, a path, or None (read
    ``opt.txt``/``config.json`` from the folder)."""
    folder = os.fspath(folder)
    gpath = find_checkpoint(folder, "G", epoch)
    if gpath is None:
        raise V2VError(f"{folder}: no {epoch}_net_G.pth (official Everybody Dance Now checkpoint folder expected)")
    if not isinstance(opt, dict):
        opt = read_opt(opt if opt else folder)
    G_sd = _load_pth(gpath)
    fpath = find_checkpoint(folder, "Gface", epoch)
    F_sd = _load_pth(fpath) if fpath else None
    dpath = find_checkpoint(folder, "D", epoch) if with_discriminators else None
    dfpath = find_checkpoint(folder, "Dface", epoch) if with_discriminators else None
    DF_sd = _load_pth(dfpath) if dfpath else None
    cfg = config_from_opt(opt, G_sd, F_sd, DF_sd)
    if cfg.face_generator and F_sd is None:
        raise V2VError(f"{folder}: the options enable the face generator but {epoch}_net_Gface.pth is missing")
    cfg = replace(cfg, vgg=cfg.vgg and build_losses, face_discrim=cfg.face_discrim and DF_sd is not None)
    system = DanceSystem(cfg, build_losses=build_losses)
    _assign(system.generator.net, {k[4:]: v for k, v in map_generator_keys(G_sd, cfg, "G").items()}, gpath, "netG")
    if cfg.face_generator:
        _assign(system.generator.face, {k[5:]: v for k, v in map_generator_keys(F_sd, cfg, "Gface").items()},
                fpath, "face generator")
    if dpath:
        _assign(system.netD, map_multiscale_d_keys(_load_pth(dpath), cfg.num_D, cfg.n_layers_D, cfg.gan_feat),
                dpath, "netD")
    if DF_sd is not None and system.netDface is not None:
        _assign(system.netDface, map_nlayer_flat_keys(DF_sd, cfg.n_layers_D, "facemodel.", ""), dfpath, "netDface")
    system.official_options = opt
    return system


def convert(folder: str, opt_path: str | None = None, out_dir: str | None = None, epoch: str = "latest") -> dict:
    """Convert an official folder into ``generator.safetensors`` (+ ``discriminators.safetensors``)
    and ``model.yaml`` (our model config) in ``out_dir`` (default: the folder). Returns the paths."""
    from v2v.config import save_yaml, to_dict
    from v2v.weights_io import save_weights

    system = load_official(folder, opt_path, epoch)
    out_dir = out_dir or folder
    os.makedirs(out_dir, exist_ok=True)
    meta = {"system": "dance", "source": os.path.basename(os.path.abspath(folder)), "model": to_dict(system.cfg)}
    paths = {"weights": os.path.join(out_dir, "dance.safetensors"), "config": os.path.join(out_dir, "model.yaml")}
    sd = {k: v for k, v in system.state_dict().items() if not k.startswith("vgg.")}
    save_weights(sd, paths["weights"], metadata=meta)
    # official data geometry: 1080x1920 canvas, 512x1024 labels, 128x128 face box, BODY_23 rendering
    data = {"size": [512, 1024], "canvas_height": None, "map_25_to_23": True, "face_box": [128, 128]}
    save_yaml({"system": "dance", "model": to_dict(system.cfg), "data": data}, paths["config"])
    return paths


# ------------------------------------------------------------------------------------- parity

#: max-abs tolerances (README "Verification and observed tolerances")
PARITY_TOLERANCES = {"step": 1e-4, "chain": 1.1e-3, "keypoints": 1e-9, "canvas": 0, "label": 1}


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _cmp(rows: list, name: str, got, exp, tol: float, kind: str = "") -> None:
    got = np.asarray(got.detach().cpu().numpy() if torch.is_tensor(got) else got)
    exp = np.asarray(exp)
    if got.shape != exp.shape:
        rows.append((name, float("inf"), tol, False, f"shape {got.shape} != {exp.shape}"))
        return
    if exp.dtype.kind == "f":
        both_nan = np.isnan(exp) & np.isnan(got.astype(np.float64))
        diff = np.where(both_nan, 0.0, np.abs(got.astype(np.float64) - exp.astype(np.float64)))
        err = float(np.nanmax(diff)) if diff.size else 0.0
        if np.isnan(diff).any():
            err = float("inf")
    else:
        err = float(np.abs(got.astype(np.int64) - exp.astype(np.int64)).max()) if exp.size else 0.0
    rows.append((name, err, tol, err <= tol, kind))


def _parity_cases(system: DanceSystem, c, rows: list) -> None:
    cfg = system.cfg
    G = system.generator
    box = _t(c["face_coords"]).long().view(1, 4) if "face_coords" in c else None
    label0, label1, real0, real1 = (_t(c[k]) for k in ("label_0", "label_1", "real_0", "real_1"))
    S, C = PARITY_TOLERANCES["step"], PARITY_TOLERANCES["chain"]
    zeros = torch.zeros_like(label0)
    system.train()  # the official scripts never call .eval()
    # checkpoint state (BatchNorm running stats move on every train-mode call): eval-mode arrays use it
    pristine = {k: v.clone() for k, v in system.state_dict().items()}
    with torch.no_grad():
        s0 = G.step_raw(label0, zeros, box if cfg.face_generator else None, features=True)
        feats = s0.get("features", {})
        for name, key in (("G0_bottleneck", "bottleneck"), ("G0_after_resblocks", "after_resblocks"),
                          ("G0_pre_tanh", "pre_tanh")):
            if name in c and key in feats:
                _cmp(rows, name, feats[key], c[name], S, "step")
        _cmp(rows, "G_out_0", s0["g_out"], c["G_out_0"], S, "step")
        if cfg.face_generator:
            _cmp(rows, "faceG_in_0", s0["face_in"], c["faceG_in_0"], S, "step")
            _cmp(rows, "face_residual_0 (teacher-forced)", G.face(_t(c["faceG_in_0"])), c["face_residual_0"], S, "step")
            _cmp(rows, "face_residual_0", s0["residual"], c["face_residual_0"], S, "step")
        _cmp(rows, "I_0", s0["image"], c["I_0"], S, "step")
        # frame t+1, teacher-forced on the stored I_0, then free-running
        t1 = G.step_raw(label1, _t(c["I_0"]), box if cfg.face_generator else None, features=True)
        f1 = t1.get("features", {})
        for name, key in (("G1_bottleneck", "bottleneck"), ("G1_after_resblocks", "after_resblocks")):
            if name in c and key in f1:
                _cmp(rows, name, f1[key], c[name], S, "step")
        _cmp(rows, "G_out_1 (teacher-forced)", t1["g_out"], c["G_out_1"], S, "step")
        if cfg.face_generator:
            _cmp(rows, "faceG_in_1 (teacher-forced)", t1["face_in"], c["faceG_in_1"], S, "step")
            _cmp(rows, "face_residual_1 (teacher-forced)", G.face(_t(c["faceG_in_1"])), c["face_residual_1"], S, "step")
        _cmp(rows, "I_1 (teacher-forced)", t1["image"], c["I_1"], S, "step")
        s1 = G.step_raw(label1, s0["image"], box if cfg.face_generator else None)
        _cmp(rows, "G_out_1", s1["g_out"], c["G_out_1"], C, "chain")
        if cfg.face_generator:
            _cmp(rows, "faceG_in_1", s1["face_in"], c["faceG_in_1"], C, "chain")
            _cmp(rows, "face_residual_1", s1["residual"], c["face_residual_1"], C, "chain")
        _cmp(rows, "I_1", s1["image"], c["I_1"], C, "chain")
        if cfg.face_generator and "faceG_case_in" in c:
            x = _t(c["faceG_case_in"])
            _cmp(rows, "faceG_case_out_train", G.face(x), c["faceG_case_out_train"], S, "step")
            sd = {k: v.clone() for k, v in G.face.state_dict().items()}
            G.face.load_state_dict({k[len("generator.face."):]: v for k, v in pristine.items()
                                    if k.startswith("generator.face.")})
            G.face.eval()
            bs = getattr(G.face, "batch_stats_at_inference", False)
            if bs:
                G.face.batch_stats_at_inference = False
            _cmp(rows, "faceG_case_out_eval", G.face(x), c["faceG_case_out_eval"], S, "step")
            if "face_residual_0_eval" in c:
                _cmp(rows, "face_residual_0_eval", G.face(_t(c["faceG_in_0"])), c["face_residual_0_eval"], S, "step")
            G.face.batch_stats_at_inference = bs
            G.face.train()
            G.face.load_state_dict(sd)
        # discriminators on the stored frames
        if any(k.startswith("D_fake_s") for k in c):
            for tag, a, b in (("fake", c["I_0"], c["I_1"]), ("real", real0, real1)):
                out = system.netD(torch.cat([label0, label1, _t(a), _t(b)], 1))
                for i, scale in enumerate(out):
                    for j, f in enumerate(scale):
                        name = f"D_{tag}_s{i}_f{j}"
                        if name in c:
                            _cmp(rows, name, f, c[name], S, "step")
                        elif not cfg.gan_feat and f"D_{tag}_s{i}" in c:
                            _cmp(rows, f"D_{tag}_s{i}", f, c[f"D_{tag}_s{i}"], S, "step")
        if system.netDface is not None and "Dface_in_fake_0" in c:
            Df = system.netDface
            sd = {k[len("netDface."):]: v for k, v in pristine.items() if k.startswith("netDface.")}
            for tag in ("fake", "real"):
                x = _t(c[f"Dface_in_{tag}_0"])
                Df.train()
                _cmp(rows, f"Dface_{tag}_0_train", Df(x), c[f"Dface_{tag}_0_train"], S, "step")
                Df.load_state_dict(sd)
                Df.eval()
                _cmp(rows, f"Dface_{tag}_0_eval", Df(x), c[f"Dface_{tag}_0_eval"], S, "step")
                Df.train()
            if box is not None:
                _cmp(rows, "Dface_in_fake_0", torch.cat([label0[:, :, box[0, 0]:box[0, 1], box[0, 2]:box[0, 3]],
                                                         s0["image"][:, :, box[0, 0]:box[0, 1], box[0, 2]:box[0, 3]]], 1),
                     c["Dface_in_fake_0"], S, "step")
        if "losses" in c:
            out = system.losses_raw(label0, label1, real0, real1, box)
            names = ["G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake", "G_GANface", "D_realface", "D_fakeface"]
            got = np.array([float(out[n]) for n in names])
            exp = np.asarray(c["losses"], dtype=np.float64)
            tol = np.maximum(S, 1e-5 * np.abs(exp))
            for n, g_, e_, t_ in zip(names, got, exp, tol):
                rows.append((f"losses[{n}]", abs(g_ - e_), float(t_), abs(g_ - e_) <= t_, "step"))


def _parity_render(d, cfgj: dict, folder: str, rows: list) -> None:
    from v2v.data.pose import read_pose
    from v2v.data.pose_render import _lanczos, face_box, face_center, render_canvas, to_canvas

    cases = cfgj.get("render_cases") or []
    names = sorted({k.split("_", 1)[0] for k in d})
    files = os.listdir(os.path.join(folder, "openpose")) if os.path.isdir(os.path.join(folder, "openpose")) else []
    for pfx in names:
        k = int(pfx[1:])
        case = next((cs for cs in cases if int(cs.get("index", -1)) == k), None)
        if case is None:
            rows.append((f"{pfx}_*", float("inf"), 0, False, "config.json has no render_cases entry"))
            continue
        stem = case["name"] + "__"
        cand = [f for f in files if f.startswith(stem) and (f.endswith(("_pose.yml", ".json")))]
        if not cand:
            rows.append((f"{pfx}_*", float("inf"), 0, False, f"openpose/{stem}* missing"))
            continue
        fr = read_pose(os.path.join(folder, "openpose", cand[0]))
        K = PARITY_TOLERANCES["keypoints"]
        for part, key in (("body", "pose"), ("face", "face"), ("hand_right", "hand_right"), ("hand_left", "hand_left")):
            if f"{pfx}_in_{key}" in d:
                _cmp(rows, f"{pfx}_in_{key}", getattr(fr, part), d[f"{pfx}_in_{key}"], K, "keypoints")
        hw = tuple(case["frame_shape_hw"])
        cf, sr = to_canvas(fr, hw, (1080, 1920), bool(case.get("map_25_to_23", False)))
        _cmp(rows, f"{pfx}_scale_resize", np.array(sr), d[f"{pfx}_scale_resize"], K, "keypoints")
        for part, key in (("body", "pose"), ("face", "face"), ("hand_right", "hand_right"), ("hand_left", "hand_left")):
            if f"{pfx}_scaled_{key}" in d:
                _cmp(rows, f"{pfx}_scaled_{key}", getattr(cf, part), d[f"{pfx}_scaled_{key}"], K, "keypoints")
        nf = int(case.get("num_face_keypoints", 8))
        canvas = render_canvas(cf, (1080, 1920), nf)
        _cmp(rows, f"{pfx}_canvas_full_rgb", canvas, d[f"{pfx}_canvas_full_rgb"], PARITY_TOLERANCES["canvas"], "image")
        S = int(case.get("output_dim", 512))
        _cmp(rows, f"{pfx}_label", _lanczos(canvas, (S, 2 * S)), d[f"{pfx}_label"], PARITY_TOLERANCES["label"], "image")
        if f"{pfx}_face_box" in d:
            _cmp(rows, f"{pfx}_face_box", np.array(face_box(cf, (1080, 1920), (512, 1024), (128, 128), 70.0, strict=False)),
                 d[f"{pfx}_face_box"], 0, "box")
            _cmp(rows, f"{pfx}_face_center", np.array(face_center(cf)), d[f"{pfx}_face_center"], K, "keypoints")
        if f"{pfx}_face_avecons" in d:
            _cmp(rows, f"{pfx}_face_avecons", np.array(cf.face[:, 2].sum() / 70.0), d[f"{pfx}_face_avecons"], K, "keypoints")


def _parity_posenorm(d, cfgj: dict, rows: list) -> None:
    from v2v.data.pose import PoseFrame
    from v2v.data.pose_norm import compute_norm_params, keypoint_stats, median_smooth, normalize_frames
    from v2v.data.pose_render import _lanczos, face_box, render_canvas

    pn = cfgj.get("posenorm", {})
    hard = pn.get("hardcoded", {})
    K = PARITY_TOLERANCES["keypoints"]

    def frames(pfx, full):
        out = []
        for n in range(len(d[pfx + "_num_people"])):
            kw = {}
            if full:
                kw = {"face": d[pfx + "_face"][n], "hand_right": d[pfx + "_hand_right"][n],
                      "hand_left": d[pfx + "_hand_left"][n]}
            out.append(PoseFrame(body=d[pfx + "_pose"][n], format="BODY_23", num_people=int(d[pfx + "_num_people"][n]), **kw))
        return out

    src, tgt = frames("src", True), frames("tgt", False)
    args = pn.get("cli_args", [])

    def arg(name, default, n=2):
        if name in args:
            i = args.index(name)
            return [float(x) for x in args[i + 1:i + 1 + n]]
        return default

    spread_t = [int(v) for v in (pn.get("spread_source") or arg("--source_spread", [0, len(src)]))]
    spread_m = [int(v) for v in (pn.get("spread_target") or arg("--target_spread", [0, len(tgt)]))]
    sfrac = arg("--source_median_frac", [0.5], 1)[0]
    tfrac = arg("--target_median_frac", [0.5], 1)[0]
    ss = keypoint_stats(src, spread_t, int(hard.get("source_stophere", 20000)), draws=d["src_stats_draws"], name="source")
    ts = keypoint_stats(tgt, spread_m, int(hard.get("target_stophere", 5000)), draws=d["tgt_stats_draws"], name="target")
    for st, p in ((ss, "src"), (ts, "tgt")):
        _cmp(rows, f"{p}_stats", np.array([st.maxheight, st.mintoe, st.maxtoe, st.avemintoe, st.minmaxtoe, st.median]),
             d[f"{p}_stats"], K, "keypoints")
        _cmp(rows, f"{p}_stats_draws (consumed)", np.array(st.draws), d[f"{p}_stats_draws"], 0, "index")
        _cmp(rows, f"{p}_stats_tiptoes", np.array(st.tiptoes), d[f"{p}_stats_tiptoes"], K, "keypoints")
        keys = sorted(st.tiptoe_to_height)
        _cmp(rows, f"{p}_tiptoe_to_height_keys", np.array(keys), d[f"{p}_tiptoe_to_height_keys"], K, "keypoints")
        _cmp(rows, f"{p}_tiptoe_to_height_max", np.array([max(st.tiptoe_to_height[k]) for k in keys]),
             d[f"{p}_tiptoe_to_height_max"], K, "keypoints")
        _cmp(rows, f"{p}_tiptoe_to_height_count", np.array([len(st.tiptoe_to_height[k]) for k in keys]),
             d[f"{p}_tiptoe_to_height_count"], 0, "index")
    P = compute_norm_params(ts, ss, tfrac, sfrac, float(hard.get("frac_minmax", 0.05)))
    _cmp(rows, "tgt_horizon", np.array(P.target_horizon), d["tgt_horizon"], K, "keypoints")
    _cmp(rows, "src_horizon", np.array(P.source_horizon), d["src_horizon"], K, "keypoints")
    _cmp(rows, "translation", np.array(P.translation), d["translation"], K, "keypoints")
    _cmp(rows, "small_range_branch", np.array(int(P.small_range)), d["small_range_branch"], 0, "index")
    _cmp(rows, "scale_close_far", np.array([P.scale_close, P.scale_far]), d["scale_close_far"], K, "keypoints")
    _cmp(rows, "minmax_heights_near_far_printed", np.array(P.heights_close_far), d["minmax_heights_near_far_printed"], K,
         "keypoints")
    _cmp(rows, "minmax_reset_close", np.array([int(v) for v in P.reset_close]), d["minmax_reset_close"], 0, "index")
    n_src = len(d["src_num_people"])
    lo, hi = spread_t
    seq = [src[n] if lo <= n <= hi else None for n in range(n_src)]
    res = list(normalize_frames(seq, P, target_width=1920))
    status = np.array([r.status for r in res])
    _cmp(rows, "src_frame_status", status, d["src_frame_status"], 0, "index")
    nan = float("nan")
    _cmp(rows, "src_diff", np.array([r.diff for r in res]), d["src_diff"], K, "keypoints")
    _cmp(rows, "src_scale", np.array([r.scale for r in res]), d["src_scale"], K, "keypoints")
    _cmp(rows, "translateback", np.array([r.translateback for r in res]), d["translateback"], K, "keypoints")
    first = next(r for r in res if r.frame is not None)
    b = src[first.index].body
    mc = (1920 // 2, max(b[15, 1], b[10, 1]))
    _cmp(rows, "min_coords", np.array(mc, dtype=np.float64), d["min_coords"], K, "keypoints")
    for part, key in (("body", "norm_pose"), ("face", "norm_face"), ("hand_right", "norm_hand_right"),
                      ("hand_left", "norm_hand_left")):
        arr = np.stack([getattr(r.frame, part) if r.frame is not None else np.full(d[key].shape[1:], nan) for r in res])
        _cmp(rows, key, arr, d[key], K, "keypoints")
    win = [r for r in res if r.frame is not None]
    w = int(hard.get("window", 7))
    meds, idx, boxes = [], [], []
    for k in range(len(win) - w + 1):
        ws = win[k:k + w]
        idx.append([x.index for x in ws])
        m = median_smooth([x.frame for x in ws], float(hard.get("median_conf_threshold", 0.0)))
        meds.append(m)
        boxes.append(face_box(m, (1080, 1920), (512, 1024), (128, 128), float(hard.get("boxbuffer", 70)), strict=False))
    _cmp(rows, "out_window_frames", np.array(idx), d["out_window_frames"], 0, "index")
    for part, key in (("body", "med_pose"), ("face", "med_face"), ("hand_right", "med_hand_right"),
                      ("hand_left", "med_hand_left")):
        _cmp(rows, key, np.stack([getattr(m, part) for m in meds]), d[key], K, "keypoints")
    _cmp(rows, "face_box", np.array(boxes), d["face_box"], 0, "box")
    nf = int(hard.get("numkeypoints_face", 8))
    size = int(hard.get("SIZE", 512))
    labels = np.stack([_lanczos(render_canvas(meds[int(k)], (1080, 1920), nf), (size, 2 * size))
                       for k in d["label_index"]])
    _cmp(rows, "label", labels, d["label"], PARITY_TOLERANCES["label"], "image")
    _cmp(rows, "src_num_people", np.array([f.num_people for f in src]), d["src_num_people"], 0, "index")
    _cmp(rows, "tgt_num_people", np.array([f.num_people for f in tgt]), d["tgt_num_people"], 0, "index")


def run_parity(folder: str | os.PathLike, verbose: bool = True, print_fn=print) -> tuple[bool, list]:
    """Check every array of ``cases.npz``, ``posenorm.npz`` and ``render.npz`` in ``folder``
    (the ones present) against v2v. Returns ``(all_ok, rows)`` with rows ``(name, max_abs_err,
    tol, ok, kind)``; arrays that are inputs are compared through the parser/loader path."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise V2VError(f"fixture folder not found: {folder}")
    cfgj = {}
    if os.path.isfile(os.path.join(folder, "config.json")):
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            cfgj = json.load(f)
    rows: list = []
    found = False
    if os.path.isfile(os.path.join(folder, "cases.npz")):
        found = True
        torch.manual_seed(0)
        system = load_official(folder)
        with np.load(os.path.join(folder, "cases.npz")) as c:
            c = {k: c[k] for k in c.files}
        _parity_cases(system, c, rows)
        covered = {r[0].split(" ")[0].split("[")[0] for r in rows}
        inputs = {"label_0", "label_1", "real_0", "real_1", "face_coords", "faceG_case_in", "faceG_case_box",
                  "Dface_in_real_0"}
        for k in c:
            if k not in covered and k not in inputs:
                rows.append((k, float("inf"), 0, False, "not checked"))
    if os.path.isfile(os.path.join(folder, "render.npz")):
        found = True
        with np.load(os.path.join(folder, "render.npz")) as d:
            _parity_render({k: d[k] for k in d.files}, cfgj, folder, rows)
    if os.path.isfile(os.path.join(folder, "posenorm.npz")):
        found = True
        with np.load(os.path.join(folder, "posenorm.npz")) as d:
            _parity_posenorm({k: d[k] for k in d.files}, cfgj, rows)
    if not found:
        raise V2VError(f"{folder}: no cases.npz, render.npz or posenorm.npz")
    ok = all(r[3] for r in rows)
    if verbose:
        for name, err, tol, good, kind in rows:
            print_fn(f"{'ok  ' if good else 'FAIL'} {name:40s} max|diff| {err:.3g}  (tol {tol:g}{', ' + kind if kind else ''})")
        print_fn(f"{sum(r[3] for r in rows)}/{len(rows)} arrays within tolerance: {'PASS' if ok else 'FAIL'}")
    return ok, rows
