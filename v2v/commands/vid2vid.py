"""vid2vid commands: ``generate vid2vid``, ``convert vid2vid``, ``parity vid2vid``, ``bench vid2vid``.

``v2v generate vid2vid --config CFG --checkpoint CKPT --labels DIR_OR_VIDEO [--instances DIR]
[--first-frame IMG | --first-frames DIR] --out OUT.mp4`` streams label maps through the
generator with constant memory (only the last n_frames_G label maps and n_frames_G-1 frames
are kept). CFG is a v2v YAML (``model:`` section) or an official ``opt.txt`` / ``options.json``;
CKPT is a v2v safetensors file (training checkpoint or ``convert`` output) or an official
``latest_net_G0.pth``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from v2v.errors import V2VError

log = logging.getLogger(__name__)


def register(cli):
    p = cli.group_command("generate", "vid2vid", help="label-map sequence -> video with a vid2vid generator")
    p.add_argument("--config", required=True,
                   help="v2v YAML (model: section) or official opt.txt / options.json")
    p.add_argument("--checkpoint", required=True,
                   help="v2v .safetensors (training checkpoint / convert output), an official latest_net_G0.pth, "
                        "or a released checkpoint folder (latest_net_G0..G<n-1>.pth)")
    p.add_argument("--first-frame-generator", default=None,
                   help="official single-image generator for the first frames (use_single_G; default: "
                        "label2city_single/latest_net_G_<loadSize>.pth in or beside the checkpoint folder)")
    p.add_argument("--labels", required=True, help="folder of label-map PNGs (e.g. test_A/<seq>) or a label video")
    p.add_argument("--instances", default=None,
                   help="folder/video of instance maps (default: the sibling *_inst/<seq> folder when it exists)")
    p.add_argument("--first-frame", default=None, help="one real first frame (image); others are generated")
    p.add_argument("--first-frames", default=None,
                   help="folder/video of real frames; the first n_frames_G-1 seed the generator (official test mode)")
    p.add_argument("--out", required=True, help="output video (.mp4 .webm .gif) or folder")
    p.add_argument("--size", default=None, help="HxW (default: from the config: data.size / official loadSize)")
    p.add_argument("--frames", type=int, default=None, help="stop after N label maps")
    p.add_argument("--fps", type=float, default=None, help="output fps (default: the label video's, else 17)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="fp32",
                   help="autocast precision; refused where the device would only emulate it (v2v.precision); "
                        "auto = the fastest native mode")
    p.add_argument("--norm-stats", choices=["batch", "running"], default="batch",
                   help="BatchNorm statistics: batch = per frame, as official test.py (default); running = eval()")
    p.add_argument("--ema", action="store_true", help="use the EMA generator weights of a training checkpoint")
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC memory layout (sometimes faster on CPU; equal to NCHW only up to float rounding, "
                        "which per-frame BatchNorm statistics can amplify along the sequence)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_generate)

    p = cli.group_command("convert", "vid2vid",
                          help="official vid2vid G0..G<n-1> (+ single-image G, D, D_T) -> one v2v safetensors")
    p.add_argument("checkpoint", help="official checkpoint folder or latest_net_G0.pth (the other scales, "
                                      "label2city_single/ and latest_net_D*.pth beside it are converted too)")
    p.add_argument("--opt", default=None, help="official opt.txt / options.json (default: the one in the folder)")
    p.add_argument("--first-frame-generator", default=None, help="single-image generator file (use_single_G)")
    p.add_argument("--out", required=True, help="output folder (vid2vid.safetensors + vid2vid.yaml)")
    p.add_argument("--no-discriminators", action="store_true", help="convert the generator only")
    p.set_defaults(func=run_convert)

    p = cli.group_command("parity", "vid2vid", help="replay an official vid2vid fixture folder (cases.npz)")
    p.add_argument("fixture_dir", help="folder with opt.txt/options.json, latest_net_*.pth and cases.npz")
    p.add_argument("--no-chain", action="store_true", help="skip the free-running multi-step chains")
    p.set_defaults(func=run_parity)

    p = cli.group_command("bench", "vid2vid", help="generation throughput/memory: v2v stream vs per-frame loop")
    add_bench_arguments(p)
    p.set_defaults(func=run_bench)


# ----------------------------------------------------------------------------------------------
# model loading
# ----------------------------------------------------------------------------------------------
def _is_official(path: str) -> bool:
    p = Path(path)
    return p.is_dir() or p.suffix in (".txt", ".json")


def load_model_config(config: str, overrides=None):
    """(model config, size) from a v2v YAML or an official option file; size is data.size (H, W),
    None, or for official options a function of the source (H, W) (the official test-time rule)."""
    from v2v.compat.vid2vid import config_from_official, read_official_options
    from v2v.config import apply_overrides, from_dict, load_yaml
    from v2v.models.vid2vid import Vid2VidDataConfig, Vid2VidModelConfig

    if not os.path.exists(config):
        raise V2VError(f"--config: file not found: {config}")
    if _is_official(config):
        opts = read_official_options(config)
        return config_from_official(opts), lambda src_hw: official_size(opts, src_hw)
    data = apply_overrides(load_yaml(config), overrides or [])
    if data.get("system", "vid2vid") != "vid2vid":
        raise V2VError(f"{config}: system is '{data.get('system')}', expected 'vid2vid'")
    if "model" not in data:
        raise V2VError(f"{config}: no 'model:' section (expected a vid2vid experiment YAML or an official opt.txt)")
    cfg = from_dict(Vid2VidModelConfig, data["model"], prefix="model")
    size = None
    if isinstance(data.get("data"), dict) and "size" in data["data"]:
        size = tuple(from_dict(Vid2VidDataConfig, {"size": data["data"]["size"]}, prefix="data").size)
    return cfg, size


def official_size(opts: dict, src_hw: tuple[int, int] | None = None):
    """Official test-time size (``get_img_params``): scaleWidth -> W = loadSize, H = loadSize*h/w,
    both rounded to multiples of 32. Without a source size, assume 2:1 (Cityscapes)."""
    load = int(opts.get("loadSize", opts.get("fineSize", 512)))
    h, w = src_hw or (1, 2)
    mode = str(opts.get("resize_or_crop", "scaleWidth"))
    if "scaleWidth" in mode:
        nw, nh = load, load * h // w
    else:
        nw = nh = load
    def r(x):
        x = round(x / 4) * 4
        return max(32, round(x / 32) * 32)

    return r(nh), r(nw)


def load_generator(config: str, checkpoint: str, ema: bool = False, overrides=None,
                   first_frame_generator: str | None = None):
    """(model config, inference Vid2VidSystem, size) for a config + checkpoint (official or ours)."""
    from v2v.models.vid2vid import Vid2VidSystem

    if not os.path.exists(checkpoint):
        raise V2VError(f"--checkpoint: not found: {checkpoint}")
    is_pickle = False
    if os.path.isfile(checkpoint):
        with open(checkpoint, "rb") as f:
            head = f.read(8)
        is_pickle = head[:2] == b"PK" or head[:1] == b"\x80"
    if os.path.isdir(checkpoint) or checkpoint.endswith((".pth", ".pt")) or is_pickle:
        from v2v.compat.vid2vid import load_official

        if not _is_official(config):
            raise V2VError(f"--checkpoint {checkpoint} is an official vid2vid checkpoint: give its opt.txt as --config")
        _, size = load_model_config(config, overrides)
        cfg, system = load_official(checkpoint, config, first_frame_generator)
        return cfg, system, size
    from v2v.weights_io import load_weights

    cfg, size = load_model_config(config, overrides)
    if first_frame_generator:
        raise V2VError("--first-frame-generator is for official checkpoints; a v2v checkpoint holds its own")
    system = Vid2VidSystem(cfg, inference=True)
    load_weights(system.netG, checkpoint, prefix="netG.", ema=ema)
    if hasattr(system, "netG_i"):
        load_weights(system.netG_i, checkpoint, prefix="netG_i.")
    return cfg, system.eval(), size


# ----------------------------------------------------------------------------------------------
# label / instance / frame sources (lazy, one frame at a time)
# ----------------------------------------------------------------------------------------------
def _nearest_resize(arr, hw):
    """Integer map resize by pixel-centre sampling (PIL NEAREST: src index floor((i+0.5)*in/out))."""
    import numpy as np

    H, W = hw
    h, w = arr.shape[:2]
    if (h, w) == (H, W):
        return arr
    ys = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)
    xs = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)
    return arr[ys][:, xs]


class MapSource:
    """Integer maps (labels or instances) from a folder of images or a (lossless) video."""

    def __init__(self, path: str, what: str):
        from v2v.data.video import IMAGE_EXTENSIONS, is_video_path, list_frames

        self.path, self.what = path, what
        self.fps = None
        p = Path(path)
        if not p.exists():
            raise V2VError(f"--{what}: not found: {path}")
        if p.is_dir():
            files = list_frames(p)
            if not files:
                subs = sorted(d for d in p.iterdir() if d.is_dir())
                if len(subs) == 1:
                    files = list_frames(subs[0])
                    self.path = str(subs[0])
                elif subs:
                    raise V2VError(f"--{what} {path}: holds several sequences ({', '.join(d.name for d in subs[:5])}); "
                                   "pass one sequence folder")
            if not files:
                raise V2VError(f"--{what} {path}: no image files ({', '.join(IMAGE_EXTENSIONS[:4])}, ...)")
            self.files, self.video = files, None
            self.count = len(files)
        elif is_video_path(p):
            from v2v.data.video import open_video

            self.files = None
            self.video = open_video(p)
            self.count = self.video.num_frames
            self.fps = self.video.fps
        else:
            self.files, self.video, self.count = [p], None, 1

    def __iter__(self):
        from v2v.data.image import read_label_map

        if self.files is not None:
            for f in self.files:
                yield read_label_map(f), str(f)
        else:
            for i, frame in enumerate(self.video):
                yield frame[..., 0].astype("int32"), f"{self.path}#frame{i}"


def _sibling_instances(labels_path: str) -> str | None:
    """.../<split>_A/<seq> -> .../<split>_inst/<seq> when that folder exists (vid2vid layout)."""
    p = Path(labels_path)
    if p.is_dir() and p.parent.name.endswith("_A"):
        cand = p.parent.parent / (p.parent.name[:-2] + "_inst") / p.name
        if cand.is_dir():
            return str(cand)
    if p.is_dir() and p.name.endswith("_A"):
        cand = p.parent / (p.name[:-2] + "_inst")
        if cand.is_dir():
            return str(cand)
    return None


def _read_frame(path: str, hw):
    """An RGB frame resized to ``hw`` as ``1,3,H,W`` in [0,1]."""
    from v2v.data.image import read_image, resize_image, to_tensor

    img = read_image(path)
    if img.shape[:2] != tuple(hw):
        img = resize_image(img, hw)
    return to_tensor(img).unsqueeze(0)


# ----------------------------------------------------------------------------------------------
# handlers
# ----------------------------------------------------------------------------------------------
def parse_hw(text: str):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise V2VError(f"--size '{text}': expected HxW, e.g. 256x512") from None
    if h <= 0 or w <= 0:
        raise V2VError(f"--size '{text}': sizes must be positive")
    return h, w


def run_generate(args) -> int:
    import torch
    from tqdm import tqdm

    from v2v.data.video import VideoWriter
    from v2v.device import resolve_device
    from v2v.models.vid2vid import Vid2VidStream, check_size
    from v2v.precision import resolve_precision

    precision = resolve_precision(args.precision, args.device)   # before loading anything
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    cfg, system, cfg_size = load_generator(args.config, args.checkpoint, ema=args.ema,
                                           first_frame_generator=args.first_frame_generator)
    system = system.to(device)
    labels = MapSource(args.labels, "labels")
    inst_path = args.instances
    if cfg.use_instance and inst_path is None:
        inst_path = _sibling_instances(labels.path)
        if inst_path is None:
            raise V2VError(f"this model uses instance maps (use_instance: true) but none were found for "
                           f"--labels {args.labels}: pass --instances DIR (expected e.g. a sibling "
                           f"<split>_inst/<seq> folder)")
        log.info("using instance maps from %s", inst_path)
    insts = MapSource(inst_path, "instances") if (cfg.use_instance and inst_path) else None
    if insts is not None and labels.count and insts.count and insts.count < labels.count:
        raise V2VError(f"--instances {inst_path}: {insts.count} maps for {labels.count} label maps")
    size = parse_hw(args.size) if args.size else None
    first = []
    if args.first_frame and args.first_frames:
        raise V2VError("give --first-frame or --first-frames, not both")
    if args.frames is not None and args.frames <= 0:
        raise V2VError(f"--frames must be > 0, got {args.frames}")
    limit = args.frames
    n = labels.count if limit is None else (min(limit, labels.count) if labels.count else limit)
    fps = args.fps or labels.fps or 17.0
    it_inst = iter(insts) if insts is not None else None
    stream = None
    with VideoWriter(args.out, fps) as writer:
        bar = tqdm(total=n, unit="frame", disable=args.no_progress, desc="vid2vid")
        for i, (lab, name) in enumerate(labels):
            if limit is not None and i >= limit:
                break
            if size is None:
                if callable(cfg_size):
                    cfg_size = cfg_size(lab.shape[:2])
                size = cfg_size or (lab.shape[0] // 32 * 32, lab.shape[1] // 32 * 32)
                if cfg_size is None:
                    log.info("no size in the config: using %dx%d", *size)
            if stream is None:
                if args.first_frame:
                    first = [_read_frame(args.first_frame, size)]
                elif args.first_frames:
                    from v2v.data.video import list_frames

                    files = list_frames(args.first_frames) if os.path.isdir(args.first_frames) else [args.first_frames]
                    first = [_read_frame(str(f), size) for f in files[:cfg.n_frames_G - 1]]
                check_size(size, cfg, where=f"--labels {args.labels} at {size[0]}x{size[1]}")
                stream = Vid2VidStream(system.netG, cfg, first_frames=first,
                                       first_generator=getattr(system, "netG_i", None), norm_stats=args.norm_stats,
                                       precision=precision, channels_last=args.channels_last)
            lab_r = torch.from_numpy(_nearest_resize(lab, size).copy()).long().unsqueeze(0)
            from v2v.models.vid2vid import check_labels

            check_labels(lab_r, cfg.label_nc, where=name)
            inst_r = None
            if it_inst is not None:
                try:
                    inst, _ = next(it_inst)
                except StopIteration:
                    raise V2VError(f"--instances {inst_path}: ran out of instance maps at frame {i}") from None
                inst_r = torch.from_numpy(_nearest_resize(inst, size).copy()).long().unsqueeze(0)
            out = stream.step(lab_r, inst_r)
            writer.write(out[0].cpu())
            bar.update(1)
        bar.close()
        if stream is None:
            raise V2VError(f"--labels {args.labels}: no label maps read")
    print(f"wrote {args.out}: {writer.num_frames} frames {size[1]}x{size[0]} at {fps:g} fps")
    return 0


def run_convert(args) -> int:
    from v2v.compat.vid2vid import convert

    out = convert(args.checkpoint, args.opt, args.out, with_discriminators=not args.no_discriminators,
                  first_frame_generator=args.first_frame_generator)
    print(f"wrote {out['weights']} and {out['config']}"
          + (f" (with {len(out['discriminators'])} discriminator files)" if out["discriminators"] else ""))
    return 0


def run_parity(args) -> int:
    import torch

    from v2v.compat.vid2vid import run_parity as _run
    from v2v.device import resolve_device

    torch.manual_seed(args.seed)
    rep = _run(args.fixture_dir, device=resolve_device(args.device), chain=not args.no_chain)
    rep.print()
    return rep.exit_code


# ----------------------------------------------------------------------------------------------
# benchmark (also tools/bench_vid2vid.py)
# ----------------------------------------------------------------------------------------------
def add_bench_arguments(p):
    p.add_argument("--config", default=None, help="v2v YAML (default: configs/vid2vid/street_256x512.yaml)")
    p.add_argument("--arch", choices=["1024_g1", "2048"], default=None,
                   help="an official released architecture at full width (3 scales, fg, instance maps)")
    p.add_argument("--size", default="256x512", help="HxW (default 256x512)")
    p.add_argument("--frames", type=int, default=6, help="label maps to generate per path")
    p.add_argument("--ngf", type=int, default=None, help="override model.ngf (reduced-width runs)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16 also runs the v2v path in bf16 and prints speed-up and PSNR vs fp32")
    p.add_argument("--rss-frames", type=int, default=0,
                   help="extra streamed frames to check memory flatness (RSS sampled each frame)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--stream-only", action="store_true",
                   help="only stream --frames label maps (first frames from the single-image G when the arch has "
                        "one): CPU-s per frame, RSS per frame and peak RSS (no loop, no FLOP count)")


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generator_flops(system, cfg, hw) -> float:
    """Multiply-adds x2 of one generation step (all scales) at ``hw`` (conv / convT layers), via hooks."""
    import torch
    from torch import nn

    from v2v.models.vid2vid import Vid2VidStream

    total = [0.0]

    def hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.ConvTranspose2d):
            total[0] += 2.0 * inp[0].numel() / inp[0].shape[0] * m.out_channels * k
        else:
            total[0] += 2.0 * out.numel() / out.shape[0] * (m.in_channels // m.groups) * k

    G = system.netG
    s = Vid2VidStream(G, cfg, first_frames=[torch.zeros(1, 3, *hw)] * (cfg.n_frames_G - 1))
    lab = torch.zeros(1, *hw, dtype=torch.long)
    for _ in range(cfg.n_frames_G - 1):
        s.step(lab, lab)
    hs = [m.register_forward_hook(hook) for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    s.step(lab, lab)
    for h in hs:
        h.remove()
    return total[0]


def measure_conv_gflops(threads_note: str = "") -> float:
    """Achievable fp32 conv throughput (a 3x3 conv, 256 ch at 64x128), GFLOP per CPU-second."""
    from v2v.bench import conv_gflops

    return conv_gflops()


def _random_street_sequence(T, hw, label_nc, seed=0):
    """Deterministic smooth random label/instance sequence (moving blobs), ``T,H,W`` long."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    H, W = hw
    base = F.interpolate(torch.randn(1, label_nc, H // 16 + 4, W // 16 + 4, generator=g), size=(H + 64, W + 64),
                         mode="bilinear", align_corners=False)[0]
    labels, insts = [], []
    for t in range(T):
        crop = base[:, 2 * t % 64:2 * t % 64 + H, t % 64:t % 64 + W]
        lab = crop.argmax(0)
        labels.append(lab)
        insts.append(lab * 1000 + (crop[0] > 0).long())
    return torch.stack(labels), torch.stack(insts)


_FULL = {"label_nc": 35, "use_instance": True, "fg": True, "ngf": 128, "n_blocks": 9, "n_blocks_local": 3,
         "n_scales_spatial": 3, "first_frame": "single_G", "first_frame_n_downsample": 4}
ARCHS = {
    # official label2city_1024_g1 (scripts/street/test_g1_1024.sh) at full width
    "1024_g1": {**_FULL, "n_downsample_G": 2, "first_frame_G": "global", "first_frame_ngf": 64},
    # official label2city_2048 (scripts/street/test_2048.sh)
    "2048": {**_FULL, "n_downsample_G": 3, "first_frame_G": "local", "first_frame_ngf": 32},
}


def run_bench(args) -> int:
    import math
    import time

    import torch

    from v2v.models.vid2vid import (
        Vid2VidModelConfig,
        Vid2VidStream,
        Vid2VidSystem,
        encode_labels,
        foreground_mask,
        label_pyramid,
        norm_statistics,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    hw = parse_hw(args.size)
    if args.arch:
        cfg = Vid2VidModelConfig(**ARCHS[args.arch])
    elif args.config:
        cfg, _ = load_model_config(args.config)
    else:
        here = Path(__file__).resolve().parents[2] / "configs" / "vid2vid" / "street_256x512.yaml"
        cfg = load_model_config(str(here))[0] if here.is_file() else Vid2VidModelConfig()
    if args.ngf:
        cfg.ngf = args.ngf
    system = Vid2VidSystem(cfg, inference=True).eval()
    G, tG, n = system.netG, cfg.n_frames_G, cfg.n_scales_spatial
    T = max(args.frames, tG)
    labels, insts = _random_street_sequence(T, hw, cfg.label_nc, seed=args.seed)
    _print_machine()
    if args.stream_only:
        return _stream_only(system, cfg, labels, insts, hw, T)
    gflop = generator_flops(system, cfg, hw) / 1e9
    conv_gflops = measure_conv_gflops()
    first = [torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(i)) for i in range(tG - 1)]
    inst_of = (lambda k: insts[k:k + 1]) if cfg.use_instance else (lambda k: None)

    # (a) straightforward per-frame loop: re-encode the whole label window at every scale every frame
    def loop():
        prev = [list(reversed(label_pyramid(fr * 2 - 1, n))) for fr in first]   # per frame, coarse first
        prev = [[p[s] for p in prev] for s in range(n)]
        outs = []
        for t in range(tG - 1, T):
            win = [encode_labels(labels[k:k + 1], inst_of(k), cfg.label_nc, cfg.use_instance)
                   for k in range(t - tG + 1, t + 1)]
            pyrs = [list(reversed(label_pyramid(w, n))) for w in win]
            lab = [torch.cat([p[s] for p in pyrs], 1) for s in range(n)]
            masks = [foreground_mask(pyrs[-1][s], cfg.fg_labels) for s in range(n)] if cfg.fg else None
            with torch.no_grad(), norm_statistics(G, "batch"):
                o = G(lab, [torch.cat(prev[s][-(tG - 1):], 1) for s in range(n)], masks)
            for s in range(n):
                prev[s].append(o[s]["image"])
            outs.append(((o[-1]["image"] + 1) / 2).clamp(0, 1))
        return outs

    def stream(precision="fp32"):
        st = Vid2VidStream(G, cfg, first_frames=first, norm_stats="batch", precision=precision)
        with torch.inference_mode():
            return [o for t in range(T) for o in [st.step(labels[t:t + 1], inst_of(t))] if t >= tG - 1]

    n_gen = T - tG + 1
    clock = time.process_time   # CPU time of all threads: wall time on a shared machine measures the others
    w0, t0 = time.perf_counter(), clock()
    ref = loop()
    t_loop, w_loop = clock() - t0, time.perf_counter() - w0
    w0, t0 = time.perf_counter(), clock()
    ours = stream()
    t_v2v, w_v2v = clock() - t0, time.perf_counter() - w0
    diffs = [float((a - b).abs().max()) for a, b in zip(ours, ref)]
    fps_loop, fps_v2v = n_gen / t_loop, n_gen / t_v2v
    name = args.arch or f"ngf {cfg.ngf}"
    print(f"vid2vid generate {hw[0]}x{hw[1]} {name}, {n} scale(s) (random weights, {n_gen} frames, fps per "
          f"CPU-second): v2v {fps_v2v:.3f} fps, per-frame loop {fps_loop:.3f} fps, ratio {fps_v2v / fps_loop:.2f}x, "
          f"max|diff| {max(diffs):.1e}")
    print(f"  wall clock: v2v {n_gen / w_v2v:.3f} fps, loop {n_gen / w_loop:.3f} fps (machine shared with other jobs)")
    print(f"  {gflop:.1f} GFLOP/frame; achieved {gflop * fps_v2v:.1f} GFLOP per CPU-s vs measured conv "
          f"{conv_gflops:.1f} GFLOP/s ({100 * gflop * fps_v2v / conv_gflops:.0f}%); threads {torch.get_num_threads()}")
    if args.precision == "bf16":
        _precision_note()
        t0 = clock()
        ours16 = stream("bf16")
        t16 = clock() - t0
        mse = sum(float(((a - b) ** 2).mean()) for a, b in zip(ours16, ours)) / len(ours)
        print(f"  bf16: {n_gen / t16:.3f} fps, speed-up {t_v2v / t16:.2f}x vs fp32, PSNR vs fp32 "
              f"{10 * math.log10(1.0 / max(mse, 1e-12)):.1f} dB")
    if args.rss_frames:
        st = Vid2VidStream(G, cfg, first_frames=first, norm_stats="batch")
        rss = []
        with torch.inference_mode():
            for t in range(args.rss_frames):
                st.step(labels[t % T:t % T + 1], inst_of(t % T))
                rss.append(_rss_mb())
        q = max(1, len(rss) // 4)
        print(f"  RSS over {len(rss)} streamed frames: first quarter max {max(rss[:q]):.0f} MB, last quarter max "
              f"{max(rss[-q:]):.0f} MB (growth {max(rss[-q:]) - max(rss[:q]):+.0f} MB); peak RSS {_peak_rss_mb():.0f} MB")
    else:
        print(f"  peak RSS {_peak_rss_mb():.0f} MB")
    return 0


def _stream_only(system, cfg, labels, insts, hw, T) -> int:
    import time

    import torch

    from v2v.models.vid2vid import Vid2VidStream

    st = Vid2VidStream(system.netG, cfg, first_generator=getattr(system, "netG_i", None), norm_stats="batch")
    rss, secs = [], []
    with torch.inference_mode():
        for t in range(T):
            t0 = time.process_time()
            st.step(labels[t:t + 1], insts[t:t + 1] if cfg.use_instance else None)
            secs.append(time.process_time() - t0)
            rss.append(_rss_mb())
    gen = secs[cfg.n_frames_G - 1:]
    print(f"vid2vid stream {hw[0]}x{hw[1]}, {cfg.n_scales_spatial} scale(s), {T} label maps: "
          f"{sum(gen) / max(1, len(gen)):.1f} CPU-s per generated frame, first frames {secs[0]:.1f} CPU-s; "
          f"RSS per frame (MB) {' '.join(f'{r:.0f}' for r in rss)}; peak RSS {_peak_rss_mb():.0f} MB")
    return 0


def _print_machine() -> None:
    from v2v.precision import cpu_line

    print(cpu_line())


def _precision_note() -> None:
    from v2v.precision import resolve_precision

    try:
        resolve_precision("bf16", "cpu")
        print("  bf16 is native on this CPU")
    except V2VError as exc:
        print(f"  NOTE: {exc} -- measured anyway for its accuracy; the bf16 speed below is emulated")
