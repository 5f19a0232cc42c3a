"""Keyframe interpolation commands.

    v2v generate keyframe --config CFG --checkpoint CKPT --first A.png --last B.png --frames 30 \\
                          --out OUT.mp4 [--samples N]
    v2v generate keyframe --method linear --first A.png --last B.png --frames 30 --out OUT.mp4
    v2v eval keyframe --config CFG [--cvae CKPT] [--cgan CKPT] [--flow CKPT] [--json OUT.json]

``v2v eval keyframe`` is registered by :mod:`v2v.commands.eval` (it calls
:func:`add_eval_arguments` / :func:`run_eval`); ``generate keyframe`` by :func:`register`.
"""
from __future__ import annotations

import os

L2_DEFINITION = ("L2 distance = ||generated - real||_2 over all T x H x W x 3 values of a clip, pixels in [0,1] "
                 "(keyframes included); mean ± std over held-out clips")
COLUMNS = (("interpolation", None), ("CVAE", "cvae"), ("CGAN", "cgan"), ("flow-guided", "flow"))


def register(cli) -> None:
    p = cli.group_command("generate", "keyframe",
                          help="a video between a first and a last frame (CVAE, CGAN, flow-guided or linear)")
    p.add_argument("--config", default=None, help="keyframe YAML (its model: section); default: the checkpoint's")
    p.add_argument("--checkpoint", default=None, help="v2v keyframe .safetensors (from v2v train or save_pretrained)")
    p.add_argument("--first", required=True, help="first frame (image file)")
    p.add_argument("--last", required=True, help="last frame (image file, same size as --first)")
    p.add_argument("--frames", type=int, default=None,
                   help="frames to write, keyframes included (default: model.frames; 30 for --method linear)")
    p.add_argument("--out", required=True, help="output video (.mp4, .gif, or a folder of PNGs)")
    p.add_argument("--samples", type=int, default=1,
                   help="videos to draw (cvae/cgan); N > 1 writes OUT_0 ... OUT_{N-1}")
    p.add_argument("--method", choices=("model", "linear"), default="model",
                   help="model: the checkpoint's variant (default); linear: cross-fade, no checkpoint")
    p.add_argument("--size", type=int, default=None,
                   help="working size (square) for flow/linear; default: the keyframes' own size "
                        "(cvae/cgan always use model.size)")
    p.add_argument("--fps", type=float, default=15.0, help="output frame rate (default 15)")
    p.set_defaults(func=run_generate)


# ----------------------------------------------------------------------------- helpers


def _square(img, size: int):
    """Center-crop to a square, then resize to ``size`` x ``size`` (np.uint8 H,W,3)."""
    from v2v.data.image import resize_image

    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return img if s == size else resize_image(img, (size, size))


def read_keyframes(first: str, last: str):
    """Both keyframes as np.uint8 H,W,3; V2VError when unreadable or of different sizes."""
    from v2v.data.image import read_image
    from v2v.errors import V2VError

    a, b = read_image(first), read_image(last)
    if a.shape != b.shape:
        raise V2VError(f"--first {first} is {a.shape[1]}x{a.shape[0]} but --last {last} is "
                       f"{b.shape[1]}x{b.shape[0]}: keyframes must have the same size")
    return a, b


def _outputs(out: str, n: int) -> list[str]:
    if n == 1:
        return [out]
    stem, ext = os.path.splitext(out.rstrip("/\\"))
    return [f"{stem}_{k}{ext}" for k in range(n)]


# ----------------------------------------------------------------------------- generate


def run_generate(args) -> int:
    import torch

    from v2v.data.video import VideoWriter, write_video
    from v2v.device import resolve_device
    from v2v.errors import V2VError
    from v2v.models.keyframe import linear_interpolation, load_keyframe

    if args.samples < 1:
        raise V2VError(f"--samples must be >= 1, got {args.samples}")
    if args.frames is not None and args.frames < 2:
        raise V2VError(f"--frames must be >= 2 (keyframes included), got {args.frames}")
    if args.size is not None and args.size < 8:
        raise V2VError(f"--size must be >= 8, got {args.size}")
    VideoWriter(args.out, args.fps)  # validates the extension and fps before any work
    device = resolve_device(args.device)
    a, b = read_keyframes(args.first, args.last)
    system = None
    if args.method == "model":
        if not args.checkpoint:
            raise V2VError("--checkpoint is required with --method model (use --method linear for the baseline)")
        system = load_keyframe(args.checkpoint, args.config, device=device)
        variant = system.cfg.variant
        if args.samples > 1 and variant == "flow":
            raise V2VError("--samples > 1 needs a stochastic variant (cvae, cgan); the flow model is deterministic")
        size = system.cfg.size if variant != "flow" else args.size
    else:
        if args.checkpoint or args.config:
            raise V2VError("--method linear takes no --checkpoint/--config")
        if args.samples > 1:
            raise V2VError("--samples > 1 needs a stochastic variant (cvae, cgan); linear is deterministic")
        variant, size = "linear", args.size
    if size is not None:
        a, b = _square(a, size), _square(b, size)
    first, last = (torch.from_numpy(x).permute(2, 0, 1)[None].float().div(255).to(device) for x in (a, b))
    frames = args.frames or (system.cfg.frames if system is not None else 30)
    videos = []
    gen = torch.Generator().manual_seed(int(args.seed))
    with torch.inference_mode():
        for _ in range(args.samples):
            if system is None:
                clip = linear_interpolation(first, last, frames)
            else:
                clip = system.generate(first, last, frames, generator=gen)
            videos.append(clip[0].clamp(0, 1).cpu())
    paths = _outputs(args.out, args.samples)
    for path, v in zip(paths, videos):
        write_video(path, v, args.fps)
    h, w = videos[0].shape[-2:]
    print(f"keyframe {variant}: wrote {len(paths)} video(s) of {frames} frames {w}x{h}: {', '.join(paths)}")
    return 0


# ----------------------------------------------------------------------------- eval


def add_eval_arguments(p) -> None:
    """Arguments of ``v2v eval keyframe`` (called by :mod:`v2v.commands.eval`)."""
    import argparse

    p.add_argument("--config", required=True,
                   help="keyframe YAML whose data: section gives the held-out clips (and model.frames/size)")
    for _, key in COLUMNS[1:]:
        p.add_argument(f"--{key}", default=None, metavar="CKPT", help=f"{key} checkpoint (column shows n/a without)")
    p.add_argument("--clips", type=int, default=None, help="evaluate at most this many held-out clips")
    p.add_argument("--device", default=argparse.SUPPRESS, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS, help="seed of z_video for cvae/cgan (default 0)")
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="tracebacks on errors")
    p.add_argument("--json", default=None, help="also write the numbers as JSON here")


def evaluate_methods(clips, systems: dict, seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """Per-clip L2 / PSNR / SSIM of linear interpolation and each system on ``clips`` (B=1 each)."""
    import torch

    from v2v.metrics.image import ssim
    from v2v.models.keyframe import clip_l2, linear_interpolation

    out = {name: {"l2": [], "psnr": [], "ssim": []} for name, _ in COLUMNS if name == "interpolation" or
           dict(COLUMNS)[name] in systems}
    gen = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        for x in clips:
            x = x[None]
            preds = {"interpolation": linear_interpolation(x[:, 0], x[:, -1], x.shape[1])}
            for name, key in COLUMNS[1:]:
                if key in systems:
                    s = systems[key]
                    dev = next(s.parameters()).device
                    preds[name] = s.generate(x[:, 0].to(dev), x[:, -1].to(dev), x.shape[1], generator=gen).cpu()
            for name, p in preds.items():
                p = p.clamp(0, 1)
                out[name]["l2"].append(float(clip_l2(p, x)[0]))
                mse = (p - x).pow(2).mean()
                out[name]["psnr"].append(float(-10 * torch.log10(mse.clamp_min(1e-10))))
                out[name]["ssim"].append(float(ssim(p[0], x[0]).mean()))
    return out


def format_table(results: dict, title: str, n: int, frames: int, size: int) -> str:
    import numpy as np

    def cell(name, k, fmt):
        if name not in results:
            return "n/a"
        v = np.asarray(results[name][k])
        return f"{fmt.format(v.mean())} ± {fmt.format(v.std())}"

    names = [c for c, _ in COLUMNS]
    rows = []
    for label, k, fmt in (("L2 distance", "l2", "{:.2f}"), ("PSNR (dB)", "psnr", "{:.2f}"), ("SSIM", "ssim", "{:.3f}")):
        rows += [[label] + names, [title] + [cell(c, k, fmt) for c in names]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [L2_DEFINITION.replace("T x H x W x 3", f"{frames} x {size} x {size} x 3"),
             f"{n} held-out clips of {frames} frames at {size}x{size}"]
    lines += [" | ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def run_eval(args) -> int:
    import json
    from types import SimpleNamespace

    from v2v.config import from_dict, load_yaml, to_dict
    from v2v.device import resolve_device
    from v2v.errors import V2VError
    from v2v.models.keyframe import KeyframeDataConfig, KeyframeModelConfig, KeyframeSystem, load_keyframe

    device = resolve_device(args.device)
    raw = load_yaml(args.config)
    if str(raw.get("system", "")).replace("_", "-") != "keyframe":
        raise V2VError(f"{args.config}: system '{raw.get('system')}' is not keyframe")
    cfg = SimpleNamespace(model=from_dict(KeyframeModelConfig, raw.get("model") or {}, "model"),
                          data=from_dict(KeyframeDataConfig, raw.get("data") or {}, "data"))
    ds = KeyframeSystem.build_dataset(cfg.data, "test", cfg.model)
    if ds is None or len(ds) == 0:
        raise V2VError(f"{args.config}: the data section has no held-out clips")
    n = len(ds) if args.clips is None else min(len(ds), args.clips)
    systems = {}
    for _, key in COLUMNS[1:]:
        path = getattr(args, key)
        if path:
            s = load_keyframe(path, device=device)
            if s.cfg.variant != key:
                raise V2VError(f"--{key} {path}: a {s.cfg.variant} checkpoint, not {key}")
            if (s.cfg.frames, s.cfg.size) != (cfg.model.frames, cfg.model.size) and key != "flow":
                raise V2VError(f"--{key} {path}: model makes {s.cfg.frames} frames at {s.cfg.size}, the clips "
                               f"of {args.config} are {cfg.model.frames} at {cfg.model.size}")
            systems[key] = s
    clips = (ds[i]["video"] for i in range(n))
    results = evaluate_methods(clips, systems, seed=int(getattr(args, 'seed', 0)))
    title = cfg.data.source if cfg.data.source != "folder" else os.path.basename(os.path.normpath(cfg.data.root))
    print(format_table(results, title, n, cfg.model.frames, cfg.model.size))
    if args.json:
        from v2v.utils import atomic_write

        with atomic_write(args.json, "w", encoding="utf-8") as f:
            json.dump({"config": args.config, "data": to_dict(cfg.data), "clips": n, "definition": L2_DEFINITION,
                       "checkpoints": {k: getattr(args, k) for _, k in COLUMNS[1:]}, "results": results}, f, indent=1)
            f.write("\n")
    return 0
