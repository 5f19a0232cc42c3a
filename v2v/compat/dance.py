"""Everybody Dance Now official checkpoints: pure official-format functions and the parity runner.

The system contract (``docs/sections/adding_a_system.md``): :func:`detect`, :func:`read_official`,
:func:`config_from_official`, :func:`checkpoint_filter_fn`, :func:`run_parity`; ``v2v.load`` and
``v2v convert dance`` / ``v2v parity dance`` use only these.

Official files (``BaseModel.save_network``): ``<epoch>_net_G.pth`` (GlobalGenerator or
LocalEnhancer), ``_net_D.pth`` (MultiscaleDiscriminator), ``_net_Dface.pth`` (NLayer, BatchNorm),
``_net_Gface.pth`` (face residual generator, global or unet); bare state dicts, read with
``torch.load(f, map_location="cpu", weights_only=True)`` (:mod:`v2v.compat.common`). Options come
from the ``opt.txt`` that ``BaseOptions.parse()`` writes (or a ``config.json`` with an ``options``
mapping), read by the shared :func:`v2v.compat.common.read_options`. Face widths, which the
official code hard-codes to 64, are read from the checkpoint shapes. InstanceNorm running buffers
(torch 0.3 checkpoints) are dropped and a missing ``num_batches_tracked`` is tolerated.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import replace

import numpy as np
import torch

from v2v.compat.common import official_state_dict, read_options
from v2v.compat.report import ParityReport, load_cases
from v2v.errors import V2VError
from v2v.models.dance import DanceModelConfig, DanceSystem
from v2v.weights_io import check_state_dict

__all__ = [
    "PARITY_TOLERANCES",
    "checkpoint_filter_fn",
    "checkpoint_widths",
    "config_from_official",
    "config_from_opt",
    "detect",
    "load_official",
    "map_generator_keys",
    "map_multiscale_d_keys",
    "map_nlayer_flat_keys",
    "read_official",
    "read_opt",
    "run_parity",
]

#: options key under which :func:`read_official` passes the widths read from the checkpoint shapes
FROM_CHECKPOINT = "v2v_from_checkpoint"


# ----------------------------------------------------------------------------------- options


def read_opt(path_or_dir: str | os.PathLike) -> dict:
    """Official options from ``opt.txt`` / ``config.json`` (or a folder holding one)."""
    return read_options(path_or_dir, required="netG", what="Everybody Dance Now")


def config_from_official(options: dict) -> DanceModelConfig:
    """Our model config from official options (pure). Widths that the official code hard-codes
    and :func:`read_official` read from the checkpoint shapes come under ``options[FROM_CHECKPOINT]``."""
    g = options.get
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
    return replace(cfg, **(g(FROM_CHECKPOINT) or {}))


def checkpoint_widths(G_sd: dict | None = None, Gface_sd: dict | None = None, Dface_sd: dict | None = None,
                      netG: str = "global") -> dict:
    """Config fields read from official state-dict shapes (the official code hard-codes the face
    widths to 64; fixtures and fine-tuned models may differ)."""
    out = {}
    if G_sd is not None and netG == "global" and "model.1.weight" in G_sd:
        out["ngf"] = int(G_sd["model.1.weight"].shape[0])
    if Gface_sd is not None:
        if any(k.startswith("model.model.") for k in Gface_sd):
            out.update(face_gtype="unet", face_generator=True, face_ngf=int(Gface_sd["model.model.0.weight"].shape[0]))
        elif "model.1.weight" in Gface_sd:
            nb = len({k.split(".")[1] for k in Gface_sd if ".conv_block." in k})
            out.update(face_gtype="global", face_generator=True, face_ngf=int(Gface_sd["model.1.weight"].shape[0]),
                       face_n_blocks=nb)
    if Dface_sd is not None and "facemodel.0.weight" in Dface_sd:
        out.update(face_ndf=int(Dface_sd["facemodel.0.weight"].shape[0]), face_discrim=True)
    return out


def config_from_opt(opt: dict, G_sd: dict | None = None, Gface_sd: dict | None = None,
                    Dface_sd: dict | None = None) -> DanceModelConfig:
    """:func:`config_from_official` with the widths of the given official state dicts."""
    widths = checkpoint_widths(G_sd, Gface_sd, Dface_sd, str(opt.get("netG", "global")))
    return config_from_official({**opt, FROM_CHECKPOINT: {**(opt.get(FROM_CHECKPOINT) or {}), **widths}})

# ---------------------------------------------------------------------------------- key maps


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
    """Official ``G`` or ``Gface`` state dict -> keys of our :class:`DanceGenerator` (``net.*`` /
    ``face.*``). The networks have the official layout (:mod:`v2v.nn.pix2pixhd`), so this only
    prefixes and drops InstanceNorm running buffers (torch 0.3 checkpoints; InstanceNorm keeps none)."""
    prefix = "net." if which == "G" else "face."
    instance = cfg.norm == "instance" and (which == "G" or cfg.face_gtype == "global")
    stale = ("running_mean", "running_var", "num_batches_tracked")
    return {prefix + k: v for k, v in sd.items() if not (instance and k.endswith(stale))}


# ------------------------------------------------------------------------------------ loading


def _split_checkpoint(checkpoint: str | os.PathLike) -> tuple[str, str]:
    """(folder, epoch label) of an official folder or ``<epoch>_net_G.pth`` file."""
    p = os.fspath(checkpoint)
    if os.path.isdir(p):
        return p, "latest"
    m = re.match(r"^(.+)_net_G\.pth$", os.path.basename(p))
    if not m:
        raise V2VError(f"{p}: expected an official Everybody Dance Now folder or an '<epoch>_net_G.pth' file")
    return os.path.dirname(p) or ".", m.group(1)


def find_checkpoint(folder: str, name: str, epoch: str = "latest") -> str | None:
    p = os.path.join(folder, f"{epoch}_net_{name}.pth")
    return p if os.path.isfile(p) else None


def detect(checkpoint: str | os.PathLike, config: str | os.PathLike | None = None) -> bool:
    """Cheap: an official EDN folder (``*_net_G.pth``) or generator file (``<epoch>_net_G.pth``)."""
    p = os.fspath(checkpoint)
    if os.path.isdir(p):
        return any(f.endswith("_net_G.pth") for f in os.listdir(p))
    return os.path.basename(p).endswith("_net_G.pth")


def read_official(checkpoint: str | os.PathLike, config: str | os.PathLike | None = None,
                  with_discriminators: bool = False) -> tuple[dict, dict]:
    """(options, state dict) of an official folder or ``<epoch>_net_G.pth`` file.

    ``config``: ``opt.txt`` / ``config.json`` (default: the one in the folder; a v2v YAML given
    for the data geometry is ignored here). The state dict has the official keys under the file
    labels: ``G.*``, ``Gface.*`` (+ ``D.*``, ``Dface.*`` with ``with_discriminators``), and the
    options carry the checkpoint widths under ``FROM_CHECKPOINT``.
    """
    folder, epoch = _split_checkpoint(checkpoint)
    gpath = find_checkpoint(folder, "G", epoch)
    if gpath is None:
        raise V2VError(f"{folder}: no {epoch}_net_G.pth (official Everybody Dance Now checkpoint folder expected)")
    use_config = config is not None and os.fspath(config).endswith((".txt", ".json"))
    opt = read_opt(config if use_config else folder)
    names = ("G", "Gface", "D", "Dface") if with_discriminators else ("G", "Gface")
    parts = {n: official_state_dict(p, require_tensors=False) for n in names if (p := find_checkpoint(folder, n, epoch))}
    if bool(opt.get("face_generator", False)) and "Gface" not in parts:
        raise V2VError(f"{folder}: the options enable the face generator but {epoch}_net_Gface.pth is missing")
    widths = checkpoint_widths(parts.get("G"), parts.get("Gface"), parts.get("Dface"), str(opt.get("netG", "global")))
    if not with_discriminators:
        widths["face_discrim"] = False  # nothing to judge with at inference
    opt = {**opt, FROM_CHECKPOINT: widths}
    return opt, {f"{n}.{k}": v for n, sd in parts.items() for k, v in sd.items()}


def _fill_bn_counters(mapped: dict, expected: dict) -> dict:
    """torch 0.4.0 checkpoints lack ``num_batches_tracked``: add zeros where the model has one."""
    for k in expected:
        if k.endswith("num_batches_tracked") and k not in mapped and k[: -len("num_batches_tracked")] + "running_mean" in mapped:
            mapped[k] = torch.zeros((), dtype=torch.long)
    return mapped


def _part(sd: dict, name: str) -> dict:
    return {k[len(name) + 1:]: v for k, v in sd.items() if k.startswith(name + ".")}


def checkpoint_filter_fn(state_dict: dict, cfg: DanceModelConfig) -> dict:
    """Official ``G.*`` / ``Gface.*`` keys (from :func:`read_official`) -> our inference-built
    :class:`DanceSystem` keys (``generator.net.*``, ``generator.face.*``); discriminators dropped."""
    out = {f"generator.{k}": v for k, v in map_generator_keys(_part(state_dict, "G"), cfg, "G").items()}
    if cfg.face_generator:
        out.update({f"generator.{k}": v for k, v in map_generator_keys(_part(state_dict, "Gface"), cfg, "Gface").items()})
        for k in [k for k in out if k.endswith("running_mean") and k.startswith("generator.face.")]:
            out.setdefault(k[: -len("running_mean")] + "num_batches_tracked", torch.zeros((), dtype=torch.long))
    return out


def load_official(folder: str | os.PathLike, opt: dict | str | None = None, with_discriminators: bool = True
                  ) -> DanceSystem:
    """A training-built :class:`DanceSystem` (generators + discriminators present in the folder,
    no VGG) from an official folder: what the parity runner checks. ``opt``: an options dict, a
    path, or None (the folder's ``opt.txt`` / ``config.json``). Inference uses ``v2v.load``."""
    folder = os.fspath(folder)
    options, sd = read_official(folder, opt if isinstance(opt, (str, os.PathLike)) else None,
                                with_discriminators=with_discriminators)
    if isinstance(opt, dict):
        options = {**opt, FROM_CHECKPOINT: options[FROM_CHECKPOINT]}
    cfg = replace(config_from_official(options), vgg=False)
    if not with_discriminators or not any(k.startswith("Dface.") for k in sd):
        cfg = replace(cfg, face_discrim=False)
    system = DanceSystem(cfg)
    mapped = checkpoint_filter_fn(sd, cfg)
    if any(k.startswith("D.") for k in sd):
        mapped.update({f"netD.{k}": v for k, v in
                       map_multiscale_d_keys(_part(sd, "D"), cfg.num_D, cfg.n_layers_D, cfg.gan_feat).items()})
    if system.netDface is not None:
        mapped.update({f"netDface.{k}": v for k, v in
                       map_nlayer_flat_keys(_part(sd, "Dface"), cfg.n_layers_D, "facemodel.", "").items()})
    expected = system.state_dict()
    if not any(k.startswith("D.") for k in sd):
        expected = {k: v for k, v in expected.items() if not k.startswith("netD.")}
    mapped = _fill_bn_counters(mapped, expected)
    check_state_dict(expected, mapped, folder)
    system.load_state_dict(mapped, strict=False)
    system.official_options = options
    return system


# ------------------------------------------------------------------------------------- parity

#: max-abs tolerances (README "Verification and observed tolerances")
PARITY_TOLERANCES = {"step": 1e-4, "chain": 1.1e-3, "keypoints": 1e-9, "canvas": 0, "label": 1}


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _cmp(rep: ParityReport, name: str, got, exp, tol: float, kind: str = "") -> None:
    rep.compare(name, got, exp, atol=tol, note=kind)


def _cmp_step(rows: ParityReport, c: dict, out: dict, t: int, tag: str, tol: float, kind: str) -> None:
    """The arrays of one generator step ``t`` (``DanceGenerator.step_raw`` output) against the cases."""
    feats = out.get("features", {})
    for key in ("bottleneck", "after_resblocks", "pre_tanh"):
        if f"G{t}_{key}" in c and key in feats:
            _cmp(rows, f"G{t}_{key}{tag}", feats[key], c[f"G{t}_{key}"], tol, kind)
    _cmp(rows, f"G_out_{t}{tag}", out["g_out"], c[f"G_out_{t}"], tol, kind)
    if "face_in" in out:
        _cmp(rows, f"faceG_in_{t}{tag}", out["face_in"], c[f"faceG_in_{t}"], tol, kind)
        _cmp(rows, f"face_residual_{t}{tag}", out["residual"], c[f"face_residual_{t}"], tol, kind)
    _cmp(rows, f"I_{t}{tag}", out["image"], c[f"I_{t}"], tol, kind)


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
        fb = box if cfg.face_generator else None
        s0 = G.step_raw(label0, zeros, fb, features=True)
        _cmp_step(rows, c, s0, 0, "", S, "step")
        # frame t+1, teacher-forced on the stored I_0, then free-running
        _cmp_step(rows, c, G.step_raw(label1, _t(c["I_0"]), fb, features=True), 1, " (teacher-forced)", S, "step")
        _cmp_step(rows, c, G.step_raw(label1, s0["image"], fb), 1, "", C, "chain")
        for t in (0, 1) if cfg.face_generator else ():
            _cmp(rows, f"face_residual_{t} (stored input)", G.face(_t(c[f"faceG_in_{t}"])), c[f"face_residual_{t}"], S,
                 "step")
        if cfg.face_generator and "faceG_case_in" in c:
            x = _t(c["faceG_case_in"])
            _cmp(rows, "faceG_case_out_train", G.face(x), c["faceG_case_out_train"], S, "step")
            sd = {k: v.clone() for k, v in G.face.state_dict().items()}
            G.face.load_state_dict({k[len("generator.face."):]: v for k, v in pristine.items()
                                    if k.startswith("generator.face.")})
            G.face.eval()
            bs = G.face_bn_batch_stats
            G.face_bn_batch_stats = False
            _cmp(rows, "faceG_case_out_eval", G.face(x), c["faceG_case_out_eval"], S, "step")
            if "face_residual_0_eval" in c:
                _cmp(rows, "face_residual_0_eval", G.face(_t(c["faceG_in_0"])), c["face_residual_0_eval"], S, "step")
            G.face_bn_batch_stats = bs
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
            exp = np.asarray(c["losses"], dtype=np.float64)
            for n, e_ in zip(names, exp):
                rows.compare(f"losses[{n}]", np.float64(out[n].item()), e_, atol=S, rtol=1e-5, note="step")


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
            rows.missing(f"{pfx}_*", "config.json has no render_cases entry")
            continue
        stem = case["name"] + "__"
        cand = [f for f in files if f.startswith(stem) and (f.endswith(("_pose.yml", ".json")))]
        if not cand:
            rows.missing(f"{pfx}_*", f"openpose/{stem}* missing")
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


def run_parity(fixture_dir: str | os.PathLike) -> ParityReport:
    """Check every array of ``cases.npz``, ``posenorm.npz`` and ``render.npz`` in ``fixture_dir``
    (the ones present) against v2v; options and widths come from the folder's ``opt.txt`` /
    ``config.json`` and checkpoint shapes. Arrays that are inputs are compared through the
    parser/loader path; an expected array that nothing checks is a failing row."""
    folder = os.fspath(fixture_dir)
    if not os.path.isdir(folder):
        raise V2VError(f"fixture folder not found: {folder}")
    cfgj = {}
    if os.path.isfile(os.path.join(folder, "config.json")):
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            cfgj = json.load(f)
    rep = ParityReport("dance", folder)
    found = [n for n in ("cases.npz", "render.npz", "posenorm.npz") if os.path.isfile(os.path.join(folder, n))]
    if not found:
        raise V2VError(f"{folder}: no cases.npz, render.npz or posenorm.npz")
    if "cases.npz" in found:
        torch.manual_seed(0)
        system = load_official(folder)
        c = load_cases(os.path.join(folder, "cases.npz"))
        _parity_cases(system, c, rep)
        covered = {r.name.split(" ")[0].split("[")[0] for r in rep.rows}
        inputs = {"label_0", "label_1", "real_0", "real_1", "face_coords", "faceG_case_in", "faceG_case_box",
                  "Dface_in_real_0"}
        for k in c:
            if k not in covered and k not in inputs:
                rep.missing(k, "not checked")
    if "render.npz" in found:
        _parity_render(load_cases(os.path.join(folder, "render.npz")), cfgj, folder, rep)
    if "posenorm.npz" in found:
        _parity_posenorm(load_cases(os.path.join(folder, "posenorm.npz")), cfgj, rep)
    return rep
