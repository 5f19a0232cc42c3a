"""Official First Order Motion Model (AliaksandrSiarohin/first-order-model) compatibility.

- :func:`model_config_from_official`: an official YAML (``model_params`` + ``train_params``) ->
  :class:`v2v.models.fomm.FOMMModelConfig`.
- :func:`load_model_config`: either format (official YAML or our ``system: fomm`` YAML).
- :func:`map_official_state_dict`: official module keys -> ours (timm-style filter function).
- :func:`load_official_checkpoint` / :func:`load_fomm`: build a system and load an official
  ``.pth.tar`` (``Logger.save_cpk`` layout) or our safetensors, validating keys and shapes.
- :func:`run_parity`: run every case of a fixture directory's ``cases.npz``.

Official semantics reproduced (see the fixture README): grid_sample with align_corners=True (the
torch-1.0 behaviour the released checkpoints were trained with), BatchNorm in eval mode, legacy
spectral norm (stored u, v in eval; one power iteration per train-mode forward).
"""
from __future__ import annotations

import copy
import glob
import os
import re

import numpy as np
import torch

from v2v.compat.common import torch_load_official
from v2v.config import from_dict, load_yaml, to_dict
from v2v.errors import V2VError
from v2v.models.fomm import FOMMModelConfig, FOMMSystem, scale_name

__all__ = [
    "convert",
    "is_official_config",
    "load_fomm",
    "load_model_config",
    "load_official_checkpoint",
    "map_official_state_dict",
    "model_config_from_official",
    "read_official_checkpoint",
    "run_parity",
    "to_official_state_dict",
]

PARTS = ("kp_detector", "generator", "discriminator")


# ----------------------------------------------------------------------------- configs


def is_official_config(data: dict) -> bool:
    return isinstance(data, dict) and "model_params" in data


def model_config_from_official(data: dict, path: str = "config") -> FOMMModelConfig:
    """Translate an official FOMM YAML mapping into our model config (every hyperparameter)."""
    mp = data.get("model_params")
    if not isinstance(mp, dict):
        raise V2VError(f"{path}: not an official FOMM config (no 'model_params' mapping)")
    common = dict(mp.get("common_params", {}))
    kp = dict(mp.get("kp_detector_params", {}))
    gen = dict(mp.get("generator_params", {}))
    disc = dict(mp.get("discriminator_params", {}))
    dm = gen.pop("dense_motion_params", None)
    tp = data.get("train_params", {}) or {}
    lw = tp.get("loss_weights", {}) or {}
    frame = (data.get("dataset_params", {}) or {}).get("frame_shape") or \
        (data.get("dataset_params", {}) or {}).get("image_shape") or [256, 256, 3]
    cfg = {
        "num_kp": common.get("num_kp", 10),
        "num_channels": common.get("num_channels", 3),
        "estimate_jacobian": common.get("estimate_jacobian", False),
        "image_size": int(frame[0]),
        "kp_detector": kp,
        "generator": {**gen, "dense_motion": dm},
        "discriminator": disc,
        "loss": {
            **({"scales": tp["scales"]} if "scales" in tp else {}),
            **{k: lw[k] for k in ("perceptual", "generator_gan", "discriminator_gan", "feature_matching",
                                  "equivariance_value", "equivariance_jacobian") if k in lw},
            **({"transform": tp["transform_params"]} if "transform_params" in tp else {}),
        },
    }
    if cfg["loss"].get("feature_matching") in (None, 0):
        cfg["loss"]["feature_matching"] = []
    try:
        return from_dict(FOMMModelConfig, cfg, prefix="model_params")
    except V2VError as exc:
        raise V2VError(f"{path}: {exc}") from None


def load_model_config(path: str | os.PathLike, overrides=None) -> FOMMModelConfig:
    """Model config from an official FOMM YAML or from our ``system: fomm`` experiment YAML."""
    path = os.fspath(path)
    data = load_yaml(path)
    if is_official_config(data):
        return model_config_from_official(data, path)
    if data.get("system", "fomm") != "fomm" or "model" not in data:
        raise V2VError(f"{path}: expected an official FOMM config (model_params) or a v2v config with "
                       f"'system: fomm' and a 'model' section")
    try:
        return from_dict(FOMMModelConfig, data["model"], prefix="model")
    except V2VError as exc:
        raise V2VError(f"{path}: {exc}") from None


# ----------------------------------------------------------------------------- state dicts

_KP_RULES = [
    (r"^predictor\.encoder\.down_blocks\.", "hourglass.encoder.blocks."),
    (r"^predictor\.decoder\.up_blocks\.", "hourglass.decoder.blocks."),
    (r"^kp\.", "heatmap_head."),
    (r"^jacobian\.", "jacobian_head."),
    (r"^down\.", "down."),
]
_GEN_RULES = [
    (r"^first\.", "stem."),
    (r"^bottleneck\.r(\d+)\.", r"bottleneck.\1."),
    (r"^final\.", "head."),
    (r"^dense_motion_network\.hourglass\.encoder\.down_blocks\.", "dense_motion.hourglass.encoder.blocks."),
    (r"^dense_motion_network\.hourglass\.decoder\.up_blocks\.", "dense_motion.hourglass.decoder.blocks."),
    (r"^dense_motion_network\.mask\.", "dense_motion.mask_head."),
    (r"^dense_motion_network\.occlusion\.", "dense_motion.occlusion_head."),
    (r"^dense_motion_network\.down\.", "dense_motion.down."),
    (r"^(down_blocks|up_blocks)\.", r"\1."),
]


def _disc_key(k: str) -> str:
    m = re.match(r"^discs\.([^.]+)\.(.*)$", k)
    if not m:
        return k
    scale = m.group(1).replace("-", ".")
    try:
        skey = scale_name(float(scale)).replace(".", "-")
    except ValueError:
        skey = m.group(1)
    rest = m.group(2)
    rest = re.sub(r"^down_blocks\.", "blocks.", rest)
    rest = re.sub(r"^conv\.", "head.", rest)
    return f"discs.{skey}.{rest}"


def _apply_rules(k: str, rules) -> str:
    for pat, rep in rules:
        new, n = re.subn(pat, rep, k)
        if n:
            return new
    return k


def map_official_state_dict(part: str, sd: dict) -> dict:
    """Map one official module state dict (``part`` in kp_detector/generator/discriminator) to our
    key names (without the system prefix). ``module.`` prefixes (DataParallel) are stripped."""
    out = {}
    for k, v in sd.items():
        k = k.removeprefix("module.")
        if part == "kp_detector":
            k = _apply_rules(k, _KP_RULES)
        elif part == "generator":
            k = _apply_rules(k, _GEN_RULES)
        elif part == "discriminator":
            k = _disc_key(k)
        out[k] = v
    if part == "discriminator":
        from v2v.nn.spectral_norm import convert_legacy_spectral_norm

        out = convert_legacy_spectral_norm(out)
    return out


_KP_INV = [
    (r"^hourglass\.encoder\.blocks\.", "predictor.encoder.down_blocks."),
    (r"^hourglass\.decoder\.blocks\.", "predictor.decoder.up_blocks."),
    (r"^heatmap_head\.", "kp."),
    (r"^jacobian_head\.", "jacobian."),
]
_GEN_INV = [
    (r"^stem\.", "first."),
    (r"^bottleneck\.(\d+)\.", r"bottleneck.r\1."),
    (r"^head\.", "final."),
    (r"^dense_motion\.hourglass\.encoder\.blocks\.", "dense_motion_network.hourglass.encoder.down_blocks."),
    (r"^dense_motion\.hourglass\.decoder\.blocks\.", "dense_motion_network.hourglass.decoder.up_blocks."),
    (r"^dense_motion\.mask_head\.", "dense_motion_network.mask."),
    (r"^dense_motion\.occlusion_head\.", "dense_motion_network.occlusion."),
    (r"^dense_motion\.down\.", "dense_motion_network.down."),
]


def to_official_state_dict(part: str, sd: dict) -> dict:
    """Inverse of :func:`map_official_state_dict`: our keys -> official module keys (legacy
    spectral-norm layout ``weight_orig/weight_u/weight_v``). Used to export and in tests."""
    out = {}
    for k, v in sd.items():
        if part == "kp_detector":
            k = _apply_rules(k, _KP_INV)
        elif part == "generator":
            k = _apply_rules(k, _GEN_INV)
        elif part == "discriminator":
            k = re.sub(r"^(discs\.[^.]+\.)blocks\.", r"\1down_blocks.", k)
            k = re.sub(r"^(discs\.[^.]+\.)head\.", r"\1conv.", k)
            k = k.replace("parametrizations.weight.original", "weight_orig")
            k = k.replace("parametrizations.weight.0._u", "weight_u").replace("parametrizations.weight.0._v", "weight_v")
        out[k] = v
    return out


def read_official_checkpoint(path: str | os.PathLike) -> dict:
    """Read an official ``.pth.tar`` (weights_only, CPU); V2VError when unreadable or not FOMM."""
    path = os.fspath(path)
    ckpt = torch_load_official(path)
    if not isinstance(ckpt, dict) or "generator" not in ckpt or "kp_detector" not in ckpt:
        keys = list(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise V2VError(f"{path}: not an official FOMM checkpoint (expected 'generator' and 'kp_detector' "
                       f"entries, found {keys})")
    return ckpt


def _check_and_load(module: torch.nn.Module, sd: dict, where: str, config_path: str | None) -> None:
    from v2v.weights_io import check_state_dict

    try:
        check_state_dict(module.state_dict(), sd, where, strict=True)
    except V2VError as exc:
        hint = f" (config {config_path})" if config_path else ""
        raise V2VError(f"{exc}{hint}") from None
    module.load_state_dict(sd, strict=True)


def load_official_checkpoint(system: FOMMSystem, path: str | os.PathLike, require_discriminator: bool = False,
                             config_path: str | None = None) -> list[str]:
    """Load an official checkpoint into ``system``; returns the parts loaded. A missing or
    mismatching discriminator is tolerated (as Logger.load_cpk does) unless required."""
    path = os.fspath(path)
    ckpt = read_official_checkpoint(path)
    loaded = []
    for part in PARTS:
        if part not in ckpt or ckpt[part] is None:
            if part == "discriminator" and not require_discriminator:
                continue
            raise V2VError(f"{path}: no '{part}' entry")
        sd = map_official_state_dict(part, ckpt[part])
        module = getattr(system, part)
        try:
            _check_and_load(module, sd, f"{path} [{part}]", config_path)
        except V2VError:
            if part == "discriminator" and not require_discriminator:
                continue
            raise
        loaded.append(part)
    return loaded


def load_fomm(checkpoint: str | os.PathLike, config: str | os.PathLike, device="cpu") -> FOMMSystem:
    """Build the system from ``config`` (official or ours) and load ``checkpoint`` (official
    ``.pth``/``.pth.tar`` or our ``.safetensors``); eval mode, on ``device``."""
    checkpoint, config = os.fspath(checkpoint), os.fspath(config)
    cfg = load_model_config(config)
    system = FOMMSystem(cfg)
    if checkpoint.endswith(".safetensors"):
        from v2v.weights_io import read_weights

        tensors, _ = read_weights(checkpoint)
        sd = {k: v for k, v in tensors.items() if not k.startswith("ema.")}
        for part in PARTS:
            sub = {k[len(part) + 1:]: v for k, v in sd.items() if k.startswith(part + ".")}
            if not sub and part == "discriminator":
                continue
            _check_and_load(getattr(system, part), sub, f"{checkpoint} [{part}]", config)
    else:
        load_official_checkpoint(system, checkpoint, config_path=config)
    return system.to(device).eval()


def convert(checkpoint: str | os.PathLike, config: str | os.PathLike, out_dir: str | os.PathLike) -> tuple[str, str]:
    """Official ``.pth.tar`` + official YAML -> ``out_dir/fomm.safetensors`` + ``out_dir/fomm.yaml``."""
    import yaml

    from v2v.weights_io import save_weights
    from v2v.utils import atomic_write

    system = load_fomm(checkpoint, config)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    wpath = os.path.join(out_dir, "fomm.safetensors")
    cpath = os.path.join(out_dir, "fomm.yaml")
    save_weights(system, wpath, metadata={"system": "fomm", "source": os.path.basename(os.fspath(checkpoint))})
    doc = {"system": "fomm", "model": to_dict(system.cfg)}
    with atomic_write(cpath, "w", encoding="utf-8") as f:
        f.write(f"# converted from {os.path.basename(os.fspath(config))} by `v2v convert fomm`\n")
        yaml.safe_dump(doc, f, sort_keys=False)
    return wpath, cpath


# ----------------------------------------------------------------------------- parity


def _np(t) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _fixture_files(fixture_dir: str) -> tuple[str, str, str]:
    ckpts = sorted(glob.glob(os.path.join(fixture_dir, "*.pth.tar")) + glob.glob(os.path.join(fixture_dir, "*.pth")))
    cfgs = sorted(glob.glob(os.path.join(fixture_dir, "*.yaml")) + glob.glob(os.path.join(fixture_dir, "*.yml")))
    cases = os.path.join(fixture_dir, "cases.npz")
    if not os.path.isdir(fixture_dir):
        raise V2VError(f"fixture directory not found: {fixture_dir}")
    if not ckpts or not cfgs or not os.path.isfile(cases):
        raise V2VError(f"{fixture_dir}: expected a *.pth.tar checkpoint, a *.yaml config and cases.npz "
                       f"(found {len(ckpts)} checkpoint(s), {len(cfgs)} config(s), "
                       f"cases.npz {'present' if os.path.isfile(cases) else 'missing'})")
    return ckpts[0], cfgs[0], cases


def compute_parity_outputs(system: FOMMSystem, inputs: dict, disc_scales_raw=None) -> dict[str, np.ndarray]:
    """Every array the official fixtures define, computed with v2v (names as in cases.npz)."""
    out: dict[str, np.ndarray] = {}
    kp_det, gen, disc = system.kp_detector, system.generator, system.discriminator
    with torch.no_grad():
        source = torch.from_numpy(inputs["source"])
        driving = torch.from_numpy(inputs["driving"])
        rec = system.reconstruct(source, driving)
        for name, kp in (("source", rec["kp_source"]), ("driving", rec["kp_driving"])):
            for key, arr in (("input_down", "input_down"), ("heatmap_logits", "heatmap_logits"),
                             ("heatmap", "heatmap"), ("jacobian_map", "jacobian_map"), ("value", "value"),
                             ("jacobian", "jacobian")):
                if arr in kp:
                    if key == "input_down" and kp_det.down is None:
                        continue
                    out[f"rec_kp_{name}_{key}"] = _np(kp[arr])
        if gen.dense_motion is not None:
            dm = gen.dense_motion(source, {k: v for k, v in rec["kp_driving"].items() if k in ("value", "jacobian")},
                                  {k: v for k, v in rec["kp_source"].items() if k in ("value", "jacobian")})
            if gen.dense_motion.down is not None:
                out["rec_dm_source_down"] = _np(dm["source_down"])
            out["rec_dm_heatmap_representation"] = _np(dm["heatmap_representation"])
            out["rec_dm_sparse_motion"] = _np(dm["sparse_motion"])
        for key in ("sparse_deformed", "mask", "deformation", "occlusion_map", "deformed", "prediction"):
            if key in rec:
                out[f"rec_{key}"] = _np(rec[key])
        out["rec_gen_encoded"] = _np(rec["encoded"])
        out["rec_gen_warped"] = _np(rec["warped"])

        # animation, all three modes, the clip fed in one batch (v2v's batched path)
        if "driving_video" in inputs:
            from v2v.models.fomm import Animator, movement_scale

            video = torch.from_numpy(inputs["driving_video"])[0].permute(1, 0, 2, 3).contiguous()  # T,3,H,W
            t = video.shape[0]
            kp_s = kp_det(source)
            out["anim_kp_source_value"] = _np(kp_s["value"])
            if "jacobian" in kp_s:
                out["anim_kp_source_jacobian"] = _np(kp_s["jacobian"])
            kp_v = kp_det(video)
            out["anim_kp_driving_value"] = _np(kp_v["value"].unsqueeze(1))
            if "jacobian" in kp_v:
                out["anim_kp_driving_jacobian"] = _np(kp_v["jacobian"].unsqueeze(1))
            out["anim_movement_scale"] = np.float32(movement_scale(kp_s["value"], kp_v["value"][:1]))
            for tag, mode, adapt in (("rel_adapt", "relative", True), ("rel_noadapt", "relative", False),
                                     ("abs", "absolute", False)):
                anim = Animator(kp_det, gen, source, mode=mode, adapt_scale=adapt)
                res = anim(video, return_all=True)
                out[f"anim_{tag}_kp_norm_value"] = _np(res["kp_norm"]["value"].unsqueeze(1))
                if "jacobian" in res["kp_norm"]:
                    out[f"anim_{tag}_kp_norm_jacobian"] = _np(res["kp_norm"]["jacobian"].unsqueeze(1))
                for key in ("deformation", "occlusion_map", "prediction"):
                    if key in res:
                        out[f"anim_{tag}_{key}"] = _np(res[key].unsqueeze(1))
                assert res["prediction"].shape[0] == t

        # discriminator (eval), on the reconstruction and the real driving frame
        kp_d = rec["kp_driving"]["value"]
        names = disc_scales_raw if disc_scales_raw is not None else [scale_name(s) for s in disc.scales]
        for tag, img in (("gen", rec["prediction"]), ("real", driving)):
            res = disc(img, kp_d)
            _disc_arrays(out, f"disc_{tag}", res, disc.scales, names, with_input=True)
    # train mode: one power iteration per spectral-normed conv before the forward
    disc_train = copy.deepcopy(disc).train()
    with torch.no_grad():
        res = disc_train(rec["prediction"], kp_d)
    _disc_arrays(out, "disc_train_gen", res, disc.scales, names, with_input=False)
    return out


def _disc_arrays(out, prefix, res, scales, names, with_input):
    for s, name in zip(scales, names):
        ours = scale_name(s)
        if with_input:
            out[f"{prefix}_input_{name}"] = _np(res[f"input_{ours}"])
        for i, f in enumerate(res[f"feature_maps_{ours}"]):
            out[f"{prefix}_feature_maps_{name}_{i}"] = _np(f)
        out[f"{prefix}_prediction_map_{name}"] = _np(res[f"prediction_map_{ours}"])


def run_parity(fixture_dir: str | os.PathLike, atol: float = 1e-4, printer=print) -> tuple[bool, list]:
    """Load the official checkpoint + config of ``fixture_dir`` and compare every array of its
    cases.npz. Returns (ok, [(name, max_abs_err or None if not produced)]). Arrays that the
    config does not produce are absent from the fixture and therefore never asked for."""
    fixture_dir = os.fspath(fixture_dir)
    ckpt, cfg_path, cases_path = _fixture_files(fixture_dir)
    torch.set_grad_enabled(True)
    system = load_fomm(ckpt, cfg_path)
    system.eval()
    raw = load_yaml(cfg_path)
    scales_raw = (raw.get("model_params", {}).get("discriminator_params", {}) or {}).get("scales", [1])
    names = [str(s) for s in scales_raw]
    cases = np.load(cases_path)
    inputs = {k: cases[k] for k in ("source", "driving", "driving_video") if k in cases.files}
    # the checkpoint's discriminator must load for the disc cases
    load_official_checkpoint(system, ckpt, require_discriminator=any(k.startswith("disc_") for k in cases.files),
                             config_path=cfg_path)
    system.eval()
    ours = compute_parity_outputs(system, inputs, names)
    results = []
    ok = True
    for name in cases.files:
        if name in inputs:
            continue
        exp = cases[name]
        if name not in ours:
            printer(f"  {name:45s} NOT PRODUCED")
            results.append((name, None))
            ok = False
            continue
        got = ours[name]
        if np.shape(got) != np.shape(exp):
            printer(f"  {name:45s} SHAPE {np.shape(got)} vs expected {np.shape(exp)}")
            results.append((name, None))
            ok = False
            continue
        err = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(exp, np.float64)))) if np.size(exp) else 0.0
        flag = "ok" if err <= atol else "FAIL"
        ok = ok and err <= atol
        printer(f"  {name:45s} max|err| {err:.3e}  {flag}")
        results.append((name, err))
    errs = [e for _, e in results if e is not None]
    worst = max(errs) if errs else float("nan")
    nfail = sum(1 for _, e in results if e is None or e > atol)
    printer(f"fomm parity {fixture_dir}: {len(results) - nfail}/{len(results)} arrays within {atol:g}, "
            f"worst {worst:.3e} -> {'PASS' if ok else 'FAIL'}")
    return ok, results
