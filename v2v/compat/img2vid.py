"""Official STVIR/seg2vid (Img2Vid) checkpoints and options, and the parity runner.

Official files: ``NNNNNN_model.pth.tar`` = ``{'vae': VAE.state_dict(), 'optimizer': ...}`` (legacy
or zip torch serialization, keys possibly prefixed ``module.`` by DataParallel) and an option file:
either a fixture ``opt.json`` (``opt`` = ``parse_opts`` values, ``vae_ctor`` = the ``VAE(bg=, fg=)``
arguments, ``fixture_width_options`` = the widths the official code hard-codes) or a bare JSON of
``parse_opts`` values (official widths; bg / fg read from the checkpoint's ``fc1`` shapes).

The official VAE keys equal ours under ``vae.`` (the model keeps the official attribute names),
except the frozen ImageNet VGG19 (``vgg_net.vgg.*``), which is not part of the generator:
:func:`vgg_state_dict` extracts it in torchvision layout (``features.N.weight``), usable as
offline VGG weights for the perceptual loss.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from v2v.compat.common import torch_load_official
from v2v.compat.report import ParityReport, load_cases
from v2v.errors import V2VError

__all__ = ["checkpoint_filter_fn", "config_from_official", "detect", "read_official", "run_parity",
           "vgg_state_dict"]

_WIDTH_KEYS = ("num_bg_classes", "num_fg_classes", "enc_widths", "motion_widths", "z_dim", "code_ch", "head_ch",
               "refine_widths", "refine_dim", "vgg_widths")


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise V2VError(f"option file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as exc:
        raise V2VError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise V2VError(f"{path}: expected a JSON object of seg2vid options")
    return data


def _opt(options: dict) -> dict:
    return options.get("opt", options)


def detect(checkpoint: str, config: str | None) -> bool:
    """An official seg2vid pair: a ``.pth.tar`` checkpoint and/or a JSON with ``num_predicted_frames``."""
    if config and str(config).endswith(".json") and os.path.isfile(config):
        try:
            return "num_predicted_frames" in _opt(_read_json(config))
        except V2VError:
            return False
    return str(checkpoint).endswith("_model.pth.tar")


def read_official(checkpoint: str, config: str | None) -> tuple[dict, dict[str, torch.Tensor]]:
    """(options, VAE state dict without ``module.``). Missing ``vae_ctor`` (bg/fg) is read from the weights."""
    obj = torch_load_official(checkpoint)
    sd = obj.get("vae") if isinstance(obj, dict) and "vae" in obj else obj
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise V2VError(f"{checkpoint}: expected an official seg2vid checkpoint {{'vae': state_dict, 'optimizer': ...}}")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    options = _read_json(config) if config else {}
    options = dict(options) if "opt" in options else {"opt": dict(options)}
    if "vae_ctor" not in options:
        try:
            options["vae_ctor"] = {"bg": int(sd["motion_net_bg.fc1.weight"].shape[0]),
                                   "fg": int(sd["motion_net_fg.fc1.weight"].shape[0]), "refine": True}
        except KeyError:
            raise V2VError(f"{checkpoint}: no motion_net_bg/fg.fc1.weight: not a two-path seg2vid VAE") from None
    return options, sd


def config_from_official(options: dict):
    """Options (see module docstring) -> :class:`v2v.models.img2vid.Img2VidModelConfig`."""
    from v2v.models.img2vid import Img2VidModelConfig

    opt = _opt(options)
    ctor = options.get("vae_ctor", {})
    if ctor.get("hallucination"):
        raise V2VError("official option hallucination=True (raw-frame decoder) is not supported")
    if ctor.get("refine", True) is False:
        raise V2VError("official option refine=False is not supported (Img2Vid always refines)")
    widths = dict(options.get("official_values_of_width_options", {}))
    widths.update(options.get("fixture_width_options", {}))
    try:
        h, w = (int(v) for v in opt.get("input_size", (128, 256)))
        T = int(opt.get("num_predicted_frames", 4))
        nf = int(opt.get("num_frames", T + 1))
    except (TypeError, ValueError) as exc:
        raise V2VError(f"seg2vid options: bad input_size / num_frames ({exc})") from None
    if nf != T + 1:
        raise V2VError(f"seg2vid options: num_frames={nf} must be num_predicted_frames+1={T + 1}")
    kw = {"size": [h, w], "num_predicted_frames": T, "input_channel": int(opt.get("input_channel", 3)),
          "alpha_recon_image": float(opt.get("alpha_recon_image", 0.85)),
          "bg_dim": int(ctor.get("bg", 512)), "fg_dim": int(ctor.get("fg", 512))}
    for k in _WIDTH_KEYS:
        if k in widths:
            kw[k] = list(widths[k]) if isinstance(widths[k], list) else int(widths[k])
    if "mask_channel" in opt:
        nbg = kw.get("num_bg_classes", 11)
        if nbg + kw.get("num_fg_classes", 9) != int(opt["mask_channel"]):
            raise V2VError(f"seg2vid options: mask_channel={opt['mask_channel']} != num_bg_classes + num_fg_classes")
    cfg = Img2VidModelConfig(**kw)
    weights = options.get("loss_weights_total")
    if weights:
        names = {"flowloss": "lambda_flow", "reconloss": "lambda_recon", "reconloss_back": "lambda_recon_back",
                 "reconloss_before": "lambda_recon_before", "kldloss": "lambda_kld", "flowcon": "lambda_flowcon",
                 "sim_loss": "lambda_sim", "vgg_loss": "lambda_vgg", "mask_loss": "lambda_mask"}
        for k, v in weights.items():
            if k in names:
                setattr(cfg, names[k], float(v))
    return cfg


def checkpoint_filter_fn(state_dict: dict, cfg=None) -> dict[str, torch.Tensor]:
    """Official VAE keys -> ours: strip ``module.``, drop the frozen ``vgg_net.*``, prefix ``vae.``, and add
    ``num_batches_tracked`` (0) where a torch 0.4.0 file lacks it."""
    out = {}
    for k, v in state_dict.items():
        k = k.removeprefix("module.")
        if k.startswith("vgg_net."):
            continue
        out["vae." + k] = v
    for k in list(out):
        if k.endswith(".running_mean"):
            nb = k[: -len("running_mean")] + "num_batches_tracked"
            out.setdefault(nb, torch.tensor(0, dtype=torch.long))
    return out


def vgg_state_dict(state_dict: dict) -> dict[str, torch.Tensor]:
    """The official checkpoint's frozen VGG19 in torchvision layout (``features.N.*``, ``classifier.N.*``)."""
    pre = "vgg_net.vgg."
    sd = {k.removeprefix("module.")[len(pre):]: v for k, v in state_dict.items()
          if k.removeprefix("module.").startswith(pre)}
    if not sd:
        raise V2VError("official checkpoint has no vgg_net.vgg.* weights")
    return sd


def load_official_system(checkpoint: str, config: str | None, inference: bool = True, with_vgg: bool = False):
    """Build an :class:`~v2v.models.img2vid.Img2VidSystem` from official files (strict key/shape check)."""
    from v2v.models.img2vid import Img2VidSystem, build_vgg
    from v2v.weights_io import check_state_dict

    options, sd = read_official(checkpoint, config)
    cfg = config_from_official(options)
    system = Img2VidSystem.from_config(cfg, inference=inference)
    ours = checkpoint_filter_fn(sd, cfg)
    check_state_dict(system.state_dict(), ours, checkpoint)
    system.load_state_dict(ours)
    if with_vgg:
        system.set_vgg(build_vgg(cfg, weights=vgg_state_dict(sd)))
    return system, options


# ----------------------------------------------------------------------------------------------
# parity
# ----------------------------------------------------------------------------------------------
_IMAGE_TOL = 1e-4
_TENSOR_TOL = 1e-5
_LOSS_RTOL = 1e-5


def _tol(name: str) -> float:
    return _IMAGE_TOL if ("warped" in name or "refined" in name) else _TENSOR_TOL


def _stats(x: torch.Tensor) -> np.ndarray:
    """``[mean, std (unbiased), mean |x|]`` per sample and predicted frame -> ``B,T,3`` (float64)."""
    x = x.double()
    if x.dim() == 5 and x.shape[1] == 2:  # flow B,2,T,H,W -> B,T,...
        x = x.transpose(1, 2)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    return torch.stack([flat.mean(-1), flat.std(-1, unbiased=True), flat.abs().mean(-1)], -1).numpy()


def _crops(x: torch.Tensor, windows: np.ndarray) -> np.ndarray:
    return np.stack([x[..., int(h0):int(h0) + 16, int(w0):int(w0) + 16].detach().numpy() for h0, w0 in windows])


def _compare_outputs(rep: ParityReport, case: str, exp: dict, out: dict, done: set) -> None:
    for k in ("flow", "flowback", "mask_fw", "mask_bw", "warped", "refined", "mu", "logvar", "z", "codex",
              "zmap", "codey"):
        if k in exp and k in out:
            rep.compare(f"{case}/{k}", out[k], exp[k], atol=_tol(k))
            done.add(k)
    windows = exp.get("crop_windows_hw")
    if windows is not None:
        done.add("crop_windows_hw")
    for k in exp:
        for kind in ("crop_", "stats_"):
            if k.startswith(kind) and k != "crop_windows_hw":
                src = k[len(kind):]
                if src not in out or (kind == "crop_" and windows is None):
                    continue
                ours = _crops(out[src], windows) if kind == "crop_" else _stats(out[src])
                rep.compare(f"{case}/{k}", ours, exp[k], atol=_tol(src))
                done.add(k)


def _loss_rows(rep: ParityReport, case: str, prefix: str, exp: dict, system, frame1, frame2, out, vp, vg,
               done: set) -> None:
    from v2v.losses.seg2vid import flow_consistency, neighbourhood_flow_smoothness, ssim_dissimilarity

    terms = system.losses.terms(frame1, frame2, out, vp, vg)
    terms["total"] = system.losses.total(terms)
    T = frame2.shape[1]
    f, fb, mf, mb, ref = out["flow"], out["flowback"], out["mask_fw"], out["mask_bw"], out["refined"]
    terms["smooth_fw_raw"] = neighbourhood_flow_smoothness(f[:, :, 0], frame2[:, 0])
    terms["smooth_bw_raw"] = neighbourhood_flow_smoothness(fb[:, :, 0], frame1)
    terms["flowcon_per_frame"] = torch.stack([flow_consistency(f[:, :, i], fb[:, :, i], mf[:, i:i + 1], mb[:, i:i + 1])
                                              for i in range(T)])
    terms["ssim_per_frame"] = torch.stack([ssim_dissimilarity(ref[:, i], frame2[:, i]) for i in range(T)])
    terms["l1_per_frame"] = torch.stack([(ref[:, i] - frame2[:, i]).abs().mean() for i in range(T)])
    if vp is not None:
        terms["vgg_per_layer"] = torch.stack([(g - p).abs().mean() for p, g in zip(vp, vg)])
    for k, v in terms.items():
        if prefix + k in exp:
            rep.compare(f"{case}/{prefix}{k}", v, exp[prefix + k], atol=0.0, rtol=_LOSS_RTOL)
            done.add(prefix + k)


def _case_batch(exp: dict, rows: int, default: int) -> int:
    """The batch of a case: from a full per-sample array, else the latent rows / rows per sample, else crops."""
    for k in ("codex", "codey", "zmap", "flow", "flowback", "mask_fw", "mask_bw", "warped", "refined"):
        if k in exp:
            return int(exp[k].shape[0])
    for k in ("mu", "logvar", "z"):
        if k in exp:
            return int(exp[k].shape[0]) // rows
    for k in exp:
        if k.startswith("stats_"):
            return int(exp[k].shape[0])
    return default


def run_parity(fixture_dir: str, checkpoint: str | None = None, config: str | None = None) -> ParityReport:
    """Replay every ``case_*.npz`` of an official seg2vid fixture folder (see the fixture README).

    Everything (sizes, T, widths, class split, batch, rows per sample) is read from ``opt.json``,
    the checkpoint and ``inputs.npz``. Eval cases (``z_m`` given, eval BN), training cases (posterior
    with the fixed ``eps``, batch-statistics BN, refine BN running stats after one forward) and loss
    cases (``train_*`` on the training forward, ``eval_*`` on the eval forward) are told apart by
    their arrays. Every array of every case file is compared or reported missing.
    """
    d = Path(fixture_dir)
    if not d.is_dir():
        raise V2VError(f"fixture folder not found: {fixture_dir}")
    config = config or str(d / "opt.json")
    if checkpoint is None:
        cands = sorted(d.glob("*_model.pth.tar")) or sorted(d.glob("*.pth.tar"))
        if not cands:
            raise V2VError(f"{fixture_dir}: no *_model.pth.tar checkpoint")
        checkpoint = str(cands[0])
    rep = ParityReport("img2vid", str(fixture_dir))
    system, options = load_official_system(checkpoint, config, inference=False, with_vgg=True)
    clean = {k: v.clone() for k, v in system.state_dict().items()}
    inp = load_cases(d / "inputs.npz")
    video = torch.from_numpy(inp["video"]).float()
    labels = torch.from_numpy(inp["label_map"]).long()
    noise = torch.from_numpy(inp["noise_bg"]).float()
    R = system.vae.rows_per_sample
    bg, fg = system.masks(labels)
    if "bg_mask" in inp:
        rep.compare("inputs/bg_mask (label grouping)", bg, inp["bg_mask"], atol=0.0)
    if "fg_mask" in inp:
        rep.compare("inputs/fg_mask (label grouping)", fg, inp["fg_mask"], atol=0.0)
    cases = sorted(d.glob("case_*.npz"))
    if not cases:
        raise V2VError(f"{fixture_dir}: no case_*.npz files")
    cache: dict = {}

    def eval_forward(B):
        if ("eval", B) not in cache:
            system.load_state_dict(clean)
            system.eval()
            with torch.no_grad():
                cache[("eval", B)] = system.vae(video[:B, 0], bg[:B], fg[:B], noise[:B],
                                                z=torch.from_numpy(inp["z_m"][:B * R]).float(), frames=video[:B])
        return cache[("eval", B)]

    def train_forward(B):
        if ("train", B) not in cache:
            system.load_state_dict(clean)
            system.train()
            out = system.vae(video[:B, 0], bg[:B], fg[:B], noise[:B], frames=video[:B],
                             eps=torch.from_numpy(inp["eps"][:B * R]).float())
            c6 = system.vae.refine_net.image_encoder.c6[1]
            out["bn_after_train_refine_c6_running_mean"] = c6.running_mean.clone()
            out["bn_after_train_refine_c6_running_var"] = c6.running_var.clone()
            cache[("train", B)] = {k: v.detach() for k, v in out.items()}
            system.load_state_dict(clean)
            system.eval()
        return cache[("train", B)]

    def vgg_feats(out, B):
        with torch.no_grad():
            return (system.vgg(out["warped"].flatten(0, 1)), system.vgg(video[:B, 1:].flatten(0, 1)))

    for path in cases:
        name = path.stem
        exp = load_cases(path)
        done: set = set()
        if any(k.endswith("flowloss") for k in exp):
            for prefix, fwd in (("train_", train_forward), ("eval_", eval_forward)):
                if not any(k.startswith(prefix) for k in exp):
                    continue
                B = video.shape[0] if prefix == "train_" else int(options.get("eval_batch", 1))
                out = fwd(B)
                vp, vg = vgg_feats(out, B)
                _loss_rows(rep, name, prefix, exp, system, video[:B, 0], video[:B, 1:], out, vp, vg, done)
        else:
            training = "z" in exp or any(k.startswith("bn_after_train") for k in exp)
            B = _case_batch(exp, R, video.shape[0])
            out = train_forward(B) if training else eval_forward(B)
            _compare_outputs(rep, name, exp, out, done)
            for k in exp:
                if k.startswith("bn_after_train") and k in out:
                    rep.compare(f"{name}/{k}", out[k], exp[k], atol=_TENSOR_TOL)
                    done.add(k)
        for k in exp:
            if k not in done:
                rep.missing(f"{name}/{k}", "not produced by the runner")
    return rep


# ----------------------------------------------------------------------------------------------
# stage 1: official pix2pixHD generators
# ----------------------------------------------------------------------------------------------
def first_frame_config_from_pix2pixhd(opts: dict):
    """Official pix2pixHD options -> :class:`v2v.models.img2vid.FirstFrameConfig`."""
    from v2v.models.img2vid import FirstFrameConfig

    if int(opts.get("label_nc", 35)) == 0:
        raise V2VError("pix2pixHD option label_nc=0 (RGB input) is not supported for the first frame")
    if opts.get("instance_feat") or opts.get("label_feat") or int(opts.get("feat_num", 0) or 0) and opts.get(
            "load_features"):
        raise V2VError("pix2pixHD encoded features (instance_feat / label_feat) are not supported")
    netG = str(opts.get("netG", "global"))
    return FirstFrameConfig(label_nc=int(opts.get("label_nc", 35)), use_instance=not bool(opts.get("no_instance")),
                            netG=netG, ngf=int(opts.get("ngf", 64)),
                            n_downsample_global=int(opts.get("n_downsample_global", 4)),
                            n_blocks_global=int(opts.get("n_blocks_global", 9)),
                            n_local_enhancers=int(opts.get("n_local_enhancers", 1)),
                            n_blocks_local=int(opts.get("n_blocks_local", 3)), norm=str(opts.get("norm", "instance")))


def load_first_frame_generator(checkpoint: str, options: str | None = None):
    """Stage-1 generator from an official pix2pixHD ``latest_net_G.pth`` (+ its ``opt.txt``, default: the
    one beside the checkpoint) or a v2v safetensors written by :func:`save_first_frame_generator`."""
    from v2v.compat.common import official_state_dict, read_options
    from v2v.models.img2vid import FirstFrameConfig, FirstFrameGenerator
    from v2v.weights_io import check_state_dict, read_weights

    if str(checkpoint).endswith(".safetensors"):
        sd, meta = read_weights(checkpoint)
        if "first_frame_config" not in meta:
            raise V2VError(f"{checkpoint}: no 'first_frame_config' metadata (not a v2v first-frame generator)")
        from v2v.config import from_dict

        cfg = from_dict(FirstFrameConfig, json.loads(meta["first_frame_config"]), prefix="first_frame_config")
    else:
        opt_path = options or os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "opt.txt")
        cfg = first_frame_config_from_pix2pixhd(read_options(opt_path, what="pix2pixHD"))
        sd = {"netG." + k: v for k, v in official_state_dict(checkpoint, "pix2pixHD generator").items()}
    G = FirstFrameGenerator(cfg)
    want = G.state_dict()
    sd = {k: v for k, v in sd.items() if k in want or not k.endswith("num_batches_tracked")}
    check_state_dict(want, sd, checkpoint)
    G.load_state_dict(sd)
    return G.eval()


def save_first_frame_generator(G, path: str) -> None:
    """Write a stage-1 generator as v2v safetensors (config in the metadata)."""
    from v2v.config import to_dict
    from v2v.weights_io import save_weights

    save_weights(G, path, {"first_frame_config": to_dict(G.cfg)})
