"""FOMM commands: `v2v animate`, `v2v convert fomm`, `v2v parity fomm`, `v2v bench fomm`."""
from __future__ import annotations

import os
import sys

FAN_FILES = ("2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth")


def register(cli):
    p = cli.command("animate", help="animate a source image with a driving video (First Order Motion Model)")
    p.add_argument("--config", required=True, help="official FOMM YAML (with an official .pth.tar) or a v2v fomm YAML")
    p.add_argument("--checkpoint", required=True, help="official .pth.tar or v2v .safetensors")
    p.add_argument("--source", required=True, help="source image (any size/mode: RGBA, gray, non-square)")
    p.add_argument("--driving", required=True, help="driving video (mp4/gif/frame folder)")
    p.add_argument("--out", required=True, help="output video (.mp4, .gif, or a folder)")
    p.add_argument("--mode", choices=("relative", "absolute"), default="relative",
                   help="relative: move the source keypoints by the driving motion (default); absolute: "
                        "use the driving keypoints as they are")
    p.add_argument("--adapt-scale", action="store_true",
                   help="scale relative motion by the keypoint convex-hull area ratio (official normalize_kp)")
    p.add_argument("--find-best-frame", action="store_true",
                   help="use the driving frame whose pose is closest to the source as the initial frame "
                        "(face-alignment landmarks when FAN weights are present, else FOMM keypoints)")
    p.add_argument("--size", type=int, default=None,
                   help="working resolution (square); default: the config's image size")
    p.add_argument("--batch-frames", type=int, default=2,
                   help="driving frames per forward pass of the fast path (default 2: peak memory ~0.1 GB "
                        "per frame of batch at 256x256)")
    p.add_argument("--exact", action="store_true",
                   help="the exact path: every frame alone, as the official make_animation (<= 1e-4 from it); "
                        "default: the fast path (channels_last, BatchNorm folded, batched; <= 1e-3)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="compute precision; bf16/fp16 only where the device runs them natively (refused "
                        "otherwise); auto (default) = the fastest native mode (fp32 on CPUs without "
                        "AVX512-BF16/AMX); --exact needs fp32")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="torch (default) or onnxruntime (runs the graphs of `v2v export fomm`: pass their "
                        "folder as --checkpoint)")
    p.add_argument("--quality", type=float, default=8, help="output video quality 0..10 (default 8)")
    p.add_argument("--no-audio", action="store_true",
                   help="drop the driving video's sound (by default it is copied into the output, trimmed)")
    p.add_argument("--auto-crop", action="store_true",
                   help="find the face in the driving video and animate a stable square crop of it (v2v crop)")
    p.set_defaults(func=run_animate)

    c = cli.group_command("convert", "fomm", help="official FOMM .pth.tar + YAML -> v2v safetensors + YAML")
    c.add_argument("checkpoint", help="official checkpoint (.pth.tar)")
    c.add_argument("--config", required=True, help="official FOMM YAML it was trained with")
    c.add_argument("--out", required=True, help="output directory (fomm.safetensors, fomm.yaml)")
    c.set_defaults(func=run_convert)

    q = cli.group_command("parity", "fomm", help="run every case of an official FOMM fixture directory")
    q.add_argument("fixture_dir", help="directory with *.pth.tar, *.yaml and cases.npz")
    q.add_argument("--atol", type=float, default=1e-4, help="max abs error allowed (default 1e-4)")
    q.set_defaults(func=run_parity)

    e = cli.group_command("export", "fomm", help="export FOMM for torch-free runtimes: keypoint detector, source "
                                                 "encoder and per-frame decoder as ONNX graphs")
    e.add_argument("--config", required=True, help="official FOMM YAML or a v2v fomm YAML")
    e.add_argument("--checkpoint", required=True, help="official .pth.tar or v2v .safetensors")
    e.add_argument("--format", choices=("onnx",), default="onnx", help="output format (onnx)")
    e.add_argument("--out", required=True, help="output folder (kp_detector.onnx, fomm_source.onnx, "
                                                "fomm_decoder.onnx, fomm_onnx.json)")
    e.add_argument("--size", type=int, default=None, help="image size (default: the config's)")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.set_defaults(func=run_export)

    b = cli.group_command("bench", "fomm", help="benchmark FOMM animation (runs tools/bench_fomm.py)")
    b.add_argument("bench_args", nargs="*", help="arguments for tools/bench_fomm.py (after --)")
    b.set_defaults(func=run_bench)


# ----------------------------------------------------------------------------- helpers


def square_resize(img, size: int):
    """Source/driving rule: center-crop to a square (the shorter side), then resize to size x size
    (INTER_AREA shrinking, bilinear enlarging). ``img`` np.uint8 HxWx3 RGB."""
    from v2v.data.image import resize_image

    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    img = img[y0:y0 + s, x0:x0 + s]
    if s != size:
        img = resize_image(img, (size, size))
    return img


def _to_tensor(frames, device):
    import numpy as np
    import torch

    a = np.stack(frames) if isinstance(frames, list) else frames[None]
    return torch.from_numpy(a).permute(0, 3, 1, 2).float().div_(255.0).to(device)


def _fan_available() -> bool:
    import torch

    d = os.path.join(torch.hub.get_dir(), "checkpoints")
    return all(os.path.isfile(os.path.join(d, f)) for f in FAN_FILES)


def _normalize_points(pts):
    """Center at the mean and scale by sqrt(convex hull area) (official find_best_frame)."""
    import numpy as np
    from scipy.spatial import ConvexHull

    pts = pts - pts.mean(axis=0, keepdims=True)
    area = ConvexHull(pts[:, :2]).volume
    return pts / np.sqrt(area)


def find_best_frame(source_img, reader, size: int, kp_detector, device, log=print) -> int:
    """Index of the driving frame whose normalized pose is closest to the source's."""
    import numpy as np

    best, best_i = float("inf"), 0
    if _fan_available():
        import face_alignment

        fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=str(device), compile=False)

        def pose(img):
            lm = fa.get_landmarks(img)
            return None if not lm else _normalize_points(lm[0])

        log("find-best-frame: using face-alignment (FAN) landmarks")
    else:
        import torch

        log("find-best-frame: face-alignment FAN weights not found in the torch hub cache "
            f"({', '.join(FAN_FILES)}); using FOMM keypoints instead")

        def pose(img):
            with torch.inference_mode():
                kp = kp_detector(_to_tensor(img, device))["value"][0].float().cpu().numpy()
            return _normalize_points(kp.astype(np.float64))

    ref = pose(source_img)
    if ref is None:
        log("find-best-frame: no face found in the source; using frame 0")
        return 0
    for i, f in enumerate(reader):
        p = pose(square_resize(f, size))
        if p is None:
            continue
        d = float(((ref - p) ** 2).sum())
        if d < best:
            best, best_i = d, i
    return best_i


# ----------------------------------------------------------------------------- handlers


def run_animate(args) -> int:
    from v2v.errors import V2VError
    from v2v.precision import resolve_precision

    precision = resolve_precision(args.precision, args.device)  # torch-free: refuses in milliseconds
    if args.exact and precision != "fp32":
        if args.precision != "auto":
            raise V2VError(f"--exact runs in fp32 (the official precision); drop --precision {args.precision}")
        precision = "fp32"
    if args.batch_frames < 1:
        raise V2VError(f"--batch-frames must be >= 1, got {args.batch_frames}")
    crop = None
    if args.auto_crop:
        from v2v.commands.crop import auto_crop_box

        crop = auto_crop_box(args.driving, log=lambda m: print(m, file=sys.stderr))
        if crop is None:
            raise V2VError(f"{args.driving}: --auto-crop found no face; crop it with `v2v crop` or drop --auto-crop")
    info = animate_file(args.config, args.checkpoint, args.source, args.driving, args.out, mode=args.mode,
                        adapt_scale=args.adapt_scale, find_best=args.find_best_frame, size=args.size,
                        batch_frames=args.batch_frames, exact=args.exact, precision=precision,
                        backend=args.backend, device=args.device, quality=args.quality,
                        log=lambda m: print(m, file=sys.stderr), crop=crop)
    if not args.no_audio:
        from v2v.data.audio import copy_audio

        if copy_audio(args.driving, args.out):
            print(f"kept the audio of {args.driving}", file=sys.stderr)
    print(f"wrote {args.out}: {info['frames']} frames at {info['fps']:g} fps, {info['size']}x{info['size']} "
          f"({args.mode}{', adapt-scale' if args.adapt_scale else ''}, {'exact' if args.exact else 'fast'}, "
          f"{precision}, {args.backend})")
    return 0


def _malloc(threshold: int | None = None, trim: bool = False) -> None:
    """glibc only: serve allocations >= ``threshold`` bytes with mmap (returned to the OS when
    freed) and/or trim the heap. Loading frees ~the checkpoint's size (other parts, pre-fusion
    weights); with glibc's dynamic threshold (up to 32 MiB) those frees stay resident."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        if threshold is not None:
            libc.mallopt(-3, int(threshold))  # M_MMAP_THRESHOLD
        if trim:
            libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def load_animation_model(config, checkpoint, exact: bool = False, backend: str = "torch", device="cpu"):
    """The networks `v2v animate` runs: (kp_detector, generator, image size) for torch (the fast
    path fuses BatchNorm and uses channels_last), or an ONNX session set for onnxruntime."""
    if backend == "onnxruntime":
        from v2v.export.fomm_onnx import OnnxFOMM

        onnx = OnnxFOMM(checkpoint)
        return onnx, None, onnx.image_size
    from v2v.compat.fomm import load_fomm
    from v2v.nn.fuse import fuse_for_inference

    _malloc(threshold=256 << 10)  # the file's tensors and the pre-fusion weights: freed for real
    system = load_fomm(checkpoint, config, device=device)
    if not exact:
        fuse_for_inference(system.kp_detector, system.generator)
    _malloc(threshold=32 << 20, trim=True)  # glibc's usual ceiling for the per-frame buffers
    return system.kp_detector, system.generator, system.cfg.image_size


def animate_file(config, checkpoint, source_path, driving_path, out_path, mode="relative", adapt_scale=False,
                 find_best=False, size=None, batch_frames=2, exact=False, precision="fp32", backend="torch",
                 device="auto", quality=8, log=print, progress=True, on_frames=None, crop=None) -> dict:
    """Everything `v2v animate` does after parsing (also what tools/bench_fomm.py times): load,
    stream the driving video in chunks of ``batch_frames`` (``exact``: still one frame per
    forward), write each chunk at once. ``on_frames(predictions N,3,H,W)`` sees every chunk
    (benchmark). ``crop``: ``(left, top, right, bottom)`` cut from every driving frame first
    (``--auto-crop``). Returns ``{"frames", "fps", "size", "t_load", "t_total"}``."""
    import torch
    from tqdm import tqdm

    from v2v.data.image import read_image
    from v2v.data.video import VideoWriter, open_video
    from v2v.device import resolve_device
    from v2v.errors import V2VError
    from v2v.models.fomm import Animator
    from v2v.precision import autocast_dtype

    device = resolve_device(device)
    kp_detector, generator, image_size = load_animation_model(config, checkpoint, exact, backend, device)
    size = size or image_size
    if size < 16:
        raise V2VError(f"--size must be >= 16, got {size}")
    src = square_resize(read_image(source_path), size)
    source = _to_tensor(src, device)
    def cropped(r):
        return (f[crop[1]:crop[3], crop[0]:crop[2]] for f in r) if crop else r

    reader = open_video(driving_path)
    frames = iter(cropped(reader))
    try:
        first = next(frames)
    except StopIteration:
        raise V2VError(f"{driving_path}: the driving video has no frames") from None
    if backend == "onnxruntime":
        anim = kp_detector.animator(source.cpu().numpy(), mode=mode, adapt_scale=adapt_scale)
    else:
        anim = Animator(kp_detector, generator, source, mode=mode, adapt_scale=adapt_scale, exact=exact,
                        autocast_dtype=autocast_dtype(precision))
    if find_best:
        with open_video(driving_path) as r2:
            best = find_best_frame(src, cropped(r2), size, kp_detector, device, log=log)
        with open_video(driving_path) as r3:
            for i, f in enumerate(cropped(r3)):
                if i == best:
                    anim.set_initial(_to_tensor(square_resize(f, size), device))
                    break
        log(f"find-best-frame: initial driving frame {best}")
    n = 0
    chunk = 1 if exact else batch_frames
    with VideoWriter(out_path, fps=reader.fps, quality=quality) as writer, \
            tqdm(total=reader.num_frames, unit="frame", desc="animate", disable=None if progress else True) as bar:
        buf = [square_resize(first, size)]

        def flush():
            nonlocal n
            with torch.inference_mode():
                pred = anim(_to_tensor(buf, device))
                writer.write(pred.clamp(0, 1).cpu())
                if on_frames is not None:
                    on_frames(pred)
            n += len(buf)
            bar.update(len(buf))
            buf.clear()

        for f in frames:
            if len(buf) == chunk:
                flush()
            buf.append(square_resize(f, size))
        flush()
    reader.close()
    return {"frames": n, "fps": reader.fps, "size": size}


def run_export(args) -> int:
    from v2v.compat.fomm import load_fomm
    from v2v.export.fomm_onnx import export_fomm_onnx

    system = load_fomm(args.checkpoint, args.config)
    for p in export_fomm_onnx(system.kp_detector, system.generator, args.out, args.size or system.cfg.image_size,
                              opset=args.opset):
        print(f"wrote {p}")
    return 0


def run_convert(args) -> int:
    from v2v.compat.fomm import convert

    w, c = convert(args.checkpoint, args.config, args.out)
    print(f"wrote {w}\nwrote {c}")
    return 0


def run_parity(args) -> int:
    from v2v.compat.fomm import run_parity as parity

    rep = parity(args.fixture_dir, atol=args.atol)
    rep.print()
    return rep.exit_code


def run_bench(args) -> int:
    import subprocess

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = os.path.join(repo, "tools", "bench_fomm.py")
    if not os.path.isfile(script):
        from v2v.errors import V2VError

        raise V2VError(f"benchmark script not found: {script} (run from a source checkout)")
    extra = list(args.bench_args)
    if getattr(args, "device", None) and args.device != "auto":
        extra += ["--device", args.device]
    return subprocess.call([sys.executable, script, *extra])
