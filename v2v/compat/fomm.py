"""Official First Order Motion Model (AliaksandrSiarohin/first-order-model) compatibility.

The contract functions (``docs/sections/adding_a_system.md``), pure except ``read_official``:

- :func:`detect` -- are these files an official FOMM checkpoint + YAML?
- :func:`read_official` -- (official YAML mapping, official state dict ``<part>.<official key>``);
  only the parts asked for are kept, the optimizer states and the rest are freed at once.
- :func:`config_from_official` -- official YAML mapping -> :class:`FOMMModelConfig`.
- :func:`checkpoint_filter_fn` -- official keys -> ours (timm style), one table both ways.
- :func:`run_parity` -- every array of a fixture's ``cases.npz`` -> :class:`ParityReport`.

:func:`load_fomm` is the loader the CLI uses (official or v2v files; the file's tensors are
assigned as the parameters, so the weights are held once).

Official semantics reproduced (see the fixture README): grid_sample with align_corners=True (the
torch-1.0 behaviour the released checkpoints were trained with), BatchNorm in eval mode, legacy
spectral norm (stored u, v in eval; one power iteration per train-mode forward).
"""
from __future__ import annotations

import copy
import gc
import glob
import os
import re

import numpy as np
import torch

from v2v.compat.common import torch_load_official
from v2v.compat.report import ParityReport, load_cases
from v2v.config import from_dict, load_yaml, to_dict
from v2v.errors import V2VError
from v2v.models.fomm import FOMMModelConfig, FOMMSystem
from v2v.nn.kp_discriminator import scale_name

__all__ = [
    "INFERENCE_PARTS",
    "PARTS",
    "checkpoint_filter_fn",
    "compute_parity_outputs",
    "config_from_official",
    "convert",
    "detect",
    "load_fomm",
    "load_model_config",
    "read_official",
    "run_parity",
    "to_official_state_dict",
]

PARTS = ("kp_detector", "generator", "discriminator")
INFERENCE_PARTS = ("kp_detector", "generator")

# ----------------------------------------------------------------------------- configs


def detect(checkpoint: str, config: str | None) -> bool:
    """Official FOMM files: a ``.pth``/``.pth.tar`` checkpoint with an official YAML
    (``model_params`` with ``kp_detector_params`` / ``generator_params``)."""
    if config is None or not str(checkpoint).endswith((".pth", ".pth.tar", ".tar")):
        return False
    try:
        mp = load_yaml(config).get("model_params")
    except V2VError:
        return False
    return isinstance(mp, dict) and ("kp_detector_params" in mp or "generator_params" in mp)


def config_from_official(options: dict, path: str = "config") -> FOMMModelConfig:
    """An official FOMM YAML mapping (``model_params`` + ``train_params``) -> our model config;
    constructor parameters pass through under their official names."""
    mp = options.get("model_params")
    if not isinstance(mp, dict):
        raise V2VError(f"{path}: not an official FOMM config (no 'model_params' mapping)")
    common = dict(mp.get("common_params", {}) or {})
    gen = dict(mp.get("generator_params", {}) or {})
    if "dense_motion_params" in gen:
        gen["dense_motion"] = gen.pop("dense_motion_params")
    tp = options.get("train_params", {}) or {}
    lw = tp.get("loss_weights", {}) or {}
    ds = options.get("dataset_params", {}) or {}
    frame = ds.get("frame_shape") or ds.get("image_shape") or [256, 256, 3]
    loss = {k: lw[k] for k in ("perceptual", "generator_gan", "discriminator_gan", "feature_matching",
                               "equivariance_value", "equivariance_jacobian") if k in lw}
    if loss.get("feature_matching") in (None, 0):
        loss["feature_matching"] = []
    if "scales" in tp:
        loss["scales"] = tp["scales"]
    if "transform_params" in tp:
        loss["transform"] = tp["transform_params"]
    cfg = {"num_kp": common.get("num_kp", 10), "num_channels": common.get("num_channels", 3),
           "estimate_jacobian": common.get("estimate_jacobian", False), "image_size": int(frame[0]),
           "kp_detector": dict(mp.get("kp_detector_params", {}) or {}), "generator": gen,
           "discriminator": dict(mp.get("discriminator_params", {}) or {}), "loss": loss}
    try:
        return from_dict(FOMMModelConfig, cfg, prefix="model_params")
    except V2VError as exc:
        raise V2VError(f"{path}: {exc}") from None


def load_model_config(path: str | os.PathLike) -> FOMMModelConfig:
    """Model config from an official FOMM YAML or from our ``system: fomm`` experiment YAML."""
    path = os.fspath(path)
    data = load_yaml(path)
    if "model_params" in data:
        return config_from_official(data, path)
    if data.get("system", "fomm") != "fomm" or "model" not in data:
        raise V2VError(f"{path}: expected an official FOMM config (model_params) or a v2v config with "
                       f"'system: fomm' and a 'model' section")
    try:
        return from_dict(FOMMModelConfig, data["model"], prefix="model")
    except V2VError as exc:
        raise V2VError(f"{path}: {exc}") from None


# ----------------------------------------------------------------------------- state dicts

# (official, ours) key prefixes of each part; "{i}" is a block index, "{s}" a discriminator scale
KEY_TABLE = {
    "kp_detector": [
        ("predictor.encoder.down_blocks.", "hourglass.encoder.blocks."),
        ("predictor.decoder.up_blocks.", "hourglass.decoder.blocks."),
        ("kp.", "heatmap_head."),
        ("jacobian.", "jacobian_head."),
    ],
    "generator": [
        ("first.", "stem."),
        ("bottleneck.r{i}.", "bottleneck.{i}."),
        ("final.", "head."),
        ("dense_motion_network.hourglass.encoder.down_blocks.", "dense_motion.hourglass.encoder.blocks."),
        ("dense_motion_network.hourglass.decoder.up_blocks.", "dense_motion.hourglass.decoder.blocks."),
        ("dense_motion_network.mask.", "dense_motion.mask_head."),
        ("dense_motion_network.occlusion.", "dense_motion.occlusion_head."),
        ("dense_motion_network.down.", "dense_motion.down."),
    ],
    "discriminator": [
        ("discs.{s}.down_blocks.", "discs.{s}.blocks."),
        ("discs.{s}.conv.", "discs.{s}.head."),
    ],
}
_SN_KEYS = [("weight_orig", "parametrizations.weight.original"), ("weight_u", "parametrizations.weight.0._u"),
            ("weight_v", "parametrizations.weight.0._v")]


def _rules(part: str, inverse: bool) -> list[tuple[re.Pattern, str]]:
    out = []
    for official, ours in KEY_TABLE[part]:
        src, dst = (ours, official) if inverse else (official, ours)
        pat = "^" + re.escape(src).replace(r"\{i\}", r"(\d+)").replace(r"\{s\}", r"([^.]+)")
        out.append((re.compile(pat), re.sub(r"\{[is]\}", r"\\1", dst)))
    return out


_FORWARD = {p: _rules(p, False) for p in KEY_TABLE}
_INVERSE = {p: _rules(p, True) for p in KEY_TABLE}


def _rename(key: str, rules) -> str:
    for pat, rep in rules:
        new, n = pat.subn(rep, key)
        if n:
            return new
    return key


def _disc_scale_key(key: str) -> str:
    """Official ModuleDict keys are ``str(scale).replace('.', '-')`` (``1``, ``0-5``, ``1-0``)."""
    m = re.match(r"^discs\.([^.]+)\.(.*)$", key)
    if not m:
        return key
    try:
        s = scale_name(float(m.group(1).replace("-", "."))).replace(".", "-")
    except ValueError:
        s = m.group(1)
    return f"discs.{s}.{m.group(2)}"


def checkpoint_filter_fn(state_dict: dict, cfg: FOMMModelConfig | None = None) -> dict[str, torch.Tensor]:
    """Official ``<part>.<official key>`` -> our ``<part>.<key>`` (``module.`` stripped, legacy
    spectral-norm layout converted). ``cfg`` is unused: the names do not depend on it."""
    from v2v.nn.spectral_norm import convert_legacy_spectral_norm

    by_part: dict[str, dict] = {}
    for k, v in state_dict.items():
        part, _, rest = k.partition(".")
        if part not in KEY_TABLE:
            raise V2VError(f"unexpected key '{k}' (expected {', '.join(PARTS)} entries)")
        rest = rest.removeprefix("module.")
        if part == "discriminator":
            rest = _disc_scale_key(rest)
        by_part.setdefault(part, {})[_rename(rest, _FORWARD[part])] = v
    if "discriminator" in by_part:
        by_part["discriminator"] = convert_legacy_spectral_norm(by_part["discriminator"])
    return {f"{p}.{k}": v for p, sd in by_part.items() for k, v in sd.items()}


def to_official_state_dict(part: str, sd: dict) -> dict:
    """Inverse of :func:`checkpoint_filter_fn` for one part: our keys -> official module keys
    (legacy spectral-norm layout). Used to write official-format files (tests, benchmark)."""
    out = {}
    for k, v in sd.items():
        k = _rename(k, _INVERSE[part])
        for old, new in _SN_KEYS:
            k = k.replace(new, old)
        out[k] = v
    return out


def read_official(checkpoint: str, config: str | None, parts=INFERENCE_PARTS) -> tuple[dict, dict]:
    """(official YAML mapping, ``{"<part>.<official key>": tensor}`` of ``parts``) from an official
    ``Logger.save_cpk`` file (weights_only, CPU). Everything else in the file (optimizer states,
    other parts) is dropped before returning. A missing part is an error unless it is the
    discriminator (``Logger.load_cpk`` tolerates that too)."""
    checkpoint = os.fspath(checkpoint)
    if config is None:
        raise V2VError(f"{checkpoint}: an official FOMM checkpoint needs its official YAML (config=...)")
    options = load_yaml(config)
    ckpt = torch_load_official(checkpoint)
    if not isinstance(ckpt, dict) or "generator" not in ckpt or "kp_detector" not in ckpt:
        keys = list(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise V2VError(f"{checkpoint}: not an official FOMM checkpoint (expected 'generator' and 'kp_detector' "
                       f"entries, found {keys})")
    sd = {}
    for part in parts:
        entry = ckpt.pop(part, None)
        if not isinstance(entry, dict):
            if part == "discriminator":
                continue
            raise V2VError(f"{checkpoint}: no '{part}' entry")
        sd.update((f"{part}.{k}", v) for k, v in entry.items())
    ckpt.clear()
    del ckpt
    gc.collect()
    return options, sd


# ----------------------------------------------------------------------------- loading


def _load_into(system: FOMMSystem, sd: dict, where: str, config: str | None, assign: bool) -> None:
    from v2v.weights_io import check_state_dict

    try:
        for part in ("kp_detector", "generator", "discriminator"):
            module = getattr(system, part)
            if module is None:
                continue
            sub = {k[len(part) + 1:]: v for k, v in sd.items() if k.startswith(part + ".")}
            check_state_dict(module.state_dict(), sub, f"{where} [{part}]", strict=True)
    except V2VError as exc:
        raise V2VError(f"{exc}" + (f" (config {config})" if config else "")) from None
    keep = {k: v for k, v in sd.items() if k.split(".", 1)[0] in system._modules}
    system.load_state_dict(keep, strict=True, assign=assign)


def load_fomm(checkpoint: str | os.PathLike, config: str | os.PathLike, device="cpu",
              inference: bool = True) -> FOMMSystem:
    """Build the system from ``config`` (official YAML or ours) and load ``checkpoint`` (official
    ``.pth``/``.pth.tar`` or our ``.safetensors``); eval mode, on ``device``.

    ``inference=True`` (the CLI): no discriminator, the file's tensors assigned as the parameters
    (one copy of the weights in memory, nothing else of the file kept). Not the meta device: its
    first use imports torch's meta kernels, ~160 MB of resident Python objects.
    """
    checkpoint, config = os.fspath(checkpoint), os.fspath(config)
    cfg = load_model_config(config)
    if checkpoint.endswith(".safetensors"):
        from v2v.weights_io import read_weights

        tensors, _ = read_weights(checkpoint)
        sd = {k: v for k, v in tensors.items() if not k.startswith("ema.")}
    else:
        _, official = read_official(checkpoint, config, parts=INFERENCE_PARTS if inference else PARTS)
        sd = checkpoint_filter_fn(official, cfg)
        del official
    if inference:  # the file's tensors become the parameters (assign); the initial ones are freed
        system = FOMMSystem(cfg, inference=True)
        _load_into(system, sd, checkpoint, config, assign=True)
    else:
        system = FOMMSystem(cfg, inference=not any(k.startswith("discriminator.") for k in sd))
        _load_into(system, sd, checkpoint, config, assign=False)
    del sd
    return system.to(device).eval()


def convert(checkpoint: str | os.PathLike, config: str | os.PathLike, out_dir: str | os.PathLike) -> tuple[str, str]:
    """Official ``.pth.tar`` + official YAML -> ``out_dir/fomm.safetensors`` + ``out_dir/fomm.yaml``
    (the inference part: keypoint detector and generator)."""
    import yaml

    from v2v.utils import atomic_write
    from v2v.weights_io import save_weights

    system = load_fomm(checkpoint, config)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    wpath, cpath = os.path.join(out_dir, "fomm.safetensors"), os.path.join(out_dir, "fomm.yaml")
    save_weights(system, wpath, metadata={"system": "fomm", "model": to_dict(system.cfg),
                                          "source": os.path.basename(os.fspath(checkpoint))})
    with atomic_write(cpath, "w", encoding="utf-8") as f:
        f.write(f"# converted from {os.path.basename(os.fspath(config))} by `v2v convert fomm`\n")
        yaml.safe_dump({"system": "fomm", "model": to_dict(system.cfg)}, f, sort_keys=False)
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

        # animation, all three modes, through the exact path (one frame at a time)
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
                anim = Animator(kp_det, gen, source, mode=mode, adapt_scale=adapt, exact=True)
                res = anim(video, return_all=True)
                out[f"anim_{tag}_kp_norm_value"] = _np(res["kp_norm"]["value"].unsqueeze(1))
                if "jacobian" in res["kp_norm"]:
                    out[f"anim_{tag}_kp_norm_jacobian"] = _np(res["kp_norm"]["jacobian"].unsqueeze(1))
                for key in ("deformation", "occlusion_map", "prediction"):
                    if key in res:
                        out[f"anim_{tag}_{key}"] = _np(res[key].unsqueeze(1))
                assert res["prediction"].shape[0] == t

    if disc is None:
        return out
    with torch.no_grad():
        # discriminator (eval), on the reconstruction and the real driving frame
        kp_d = rec["kp_driving"]["value"]
        names = disc_scales_raw if disc_scales_raw is not None else [scale_name(s) for s in disc.scales]
        for tag, img in (("gen", rec["prediction"]), ("real", driving)):
            res = disc(img, kp_d)
            _disc_arrays(out, f"disc_{tag}", res, disc.scales, names, with_input=True)
        # train mode: one power iteration per spectral-normed conv before the forward
        res = copy.deepcopy(disc).train()(rec["prediction"], kp_d)
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


def run_parity(fixture_dir: str | os.PathLike, atol: float = 1e-4, **_options) -> ParityReport:
    """Load the official checkpoint + YAML of ``fixture_dir`` and compare every array of its
    ``cases.npz`` (read with :func:`load_cases`, no pickles). Everything is derived from the YAML;
    arrays a configuration does not produce are absent from the fixture and never asked for."""
    fixture_dir = os.fspath(fixture_dir)
    ckpt, cfg_path, cases_path = _fixture_files(fixture_dir)
    cases = load_cases(cases_path)
    raw, official = read_official(ckpt, cfg_path, parts=PARTS)
    has_disc = any(k.startswith("discriminator.") for k in official)
    if not has_disc and any(k.startswith("disc_") for k in cases):
        raise V2VError(f"{ckpt}: no 'discriminator' entry, but {cases_path} has discriminator cases")
    system = FOMMSystem(config_from_official(raw, cfg_path), inference=not has_disc)
    _load_into(system, checkpoint_filter_fn(official), ckpt, cfg_path, assign=False)
    system.eval()
    scales_raw = ((raw.get("model_params", {}) or {}).get("discriminator_params", {}) or {}).get("scales", [1])
    inputs = {k: cases[k] for k in ("source", "driving", "driving_video") if k in cases}
    ours = compute_parity_outputs(system, inputs, [str(s) for s in scales_raw])
    rep = ParityReport("fomm", fixture_dir)
    for name, expected in cases.items():
        if name in inputs:
            continue
        if name not in ours:
            rep.missing(name)
        else:
            rep.compare(name, ours[name], expected, atol=atol)
    return rep
