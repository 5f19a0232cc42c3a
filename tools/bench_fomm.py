"""Benchmark FOMM animation: v2v's streaming pipeline vs a per-frame loop written like the
official demo.py (same random vox-256 weights, same run).

    python tools/bench_fomm.py                 # full run: throughput on --frames, RSS on the real clip
    python tools/bench_fomm.py --frames 4 --no-rss
    python tools/bench_fomm.py --precision bf16

Paths:
- "per-frame loop" (official demo.py `make_animation` style): the whole driving clip is decoded and
  resized to float64 frames, stacked into one float32 tensor (1,3,T,H,W); for every frame:
  kp_detector(frame), normalize_kp, generator(source, kp_source, kp_norm) (which re-encodes the
  source each time), under torch.no_grad(); predictions are collected in a list and written at the end.
- "v2v": :class:`v2v.models.fomm.Animator`: the source encoded once (keypoints, encoder features,
  dense-motion downsample), driving frames streamed from the decoder in batches of
  --batch-frames, torch.inference_mode, channels_last, each batch written as soon as it is done.

Printed: throughput of both paths and their ratio, max |difference| of the outputs, achieved
GFLOP/s (FLOPs counted with torch.utils.flop_counter) vs the machine's measured conv throughput
(a big 3x3 conv timed in the same run), peak RSS of each path on the real 265-frame clip (each in
its own subprocess, resource.getrusage maxrss), and v2v's peak RSS on the clip looped 4x.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULT_CLIP = os.path.join(REPO, "..", "shared", "data", "animation", "driving", "00.mp4")
DEFAULT_SOURCE = os.path.join(REPO, "..", "shared", "data", "animation", "source", "statue-02.png")
CONFIG = os.path.join(REPO, "configs", "fomm", "vox-256.yaml")


def build_system(seed: int = 0, calib=None):
    """vox-256 networks with random weights (the jacobian head gets small random weights, as in
    the parity fixtures, so the jacobians are not all identity). ``calib`` (``B,3,H,W``): BatchNorm
    running statistics are set to the batch statistics of a reconstruction of these images (as the
    parity fixtures do), so eval-mode activations are normalised and the output is a real,
    input-dependent picture instead of a constant grey."""
    import torch

    from v2v.config import from_dict, load_yaml
    from v2v.models.fomm import FOMMModelConfig, FOMMSystem

    cfg = from_dict(FOMMModelConfig, load_yaml(CONFIG)["model"])
    torch.manual_seed(seed)
    system = FOMMSystem(cfg)
    with torch.no_grad():
        jh = system.kp_detector.jacobian_head
        torch.nn.init.kaiming_uniform_(jh.weight, a=math.sqrt(5))
        jh.weight.mul_(0.12)
        jh.bias.add_(torch.randn_like(jh.bias) * 0.05)
        system.generator.head.weight.mul_(0.6)
        if calib is not None:
            bns = [m for m in system.modules() if isinstance(m, torch.nn.BatchNorm2d)]
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration forward
            system.train()
            system.reconstruct(calib[:1].expand(len(calib), -1, -1, -1), calib)
            for m in bns:
                m.momentum = 0.1
    return system.eval()


def calibration_images(source):
    import torch

    return torch.cat([source, source.flip(-1), source.flip(-2)])


def load_source(path: str, size: int):
    import torch

    from v2v.commands.fomm import square_resize
    from v2v.data.image import read_image

    img = square_resize(read_image(path), size)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255)


def frame_iter(path: str, loops: int, frames: int | None):
    """uint8 HxWx3 frames of ``path``, the whole clip ``loops`` times, at most ``frames`` in all."""
    from v2v.data.video import open_video

    n = 0
    for _ in range(loops):
        with open_video(path) as r:
            for f in r:
                if frames is not None and n >= frames:
                    return
                yield f
                n += 1


# ----------------------------------------------------------------------------- the two paths


def run_official_like(system, source, clip, frames, size, out_path=None, collect=True):
    """demo.py-style: whole clip in memory, one frame per call, the source re-encoded per frame."""
    import numpy as np
    import torch

    from v2v.commands.fomm import square_resize
    from v2v.models.fomm import normalize_kp

    # demo.py: imageio.mimread + skimage resize -> float64 HxWx3 frames in [0,1]
    video = [square_resize(f, size).astype(np.float64) / 255.0 for f in frame_iter(clip, 1, frames)]
    preds = []
    with torch.no_grad():
        driving = torch.tensor(np.array(video)[np.newaxis].astype(np.float32)).permute(0, 4, 1, 2, 3)
        kp_source = system.kp_detector(source)
        kp_source = {k: kp_source[k] for k in ("value", "jacobian")}
        kp_initial = None
        for t in range(driving.shape[2]):
            frame = driving[:, :, t]
            kp_d = system.kp_detector(frame)
            kp_d = {k: kp_d[k] for k in ("value", "jacobian")}
            if kp_initial is None:
                kp_initial = kp_d
            kp_norm = normalize_kp(kp_source, kp_d, kp_initial, use_relative_movement=True,
                                   use_relative_jacobian=True)
            out = system.generator(source, kp_norm, kp_source)
            preds.append(np.transpose(out["prediction"].data.cpu().numpy(), [0, 2, 3, 1])[0])
    if out_path:
        from v2v.data.video import write_video

        write_video(out_path, [(np.clip(p, 0, 1) * 255).round().astype(np.uint8) for p in preds], fps=30)
    return preds if collect else len(preds)


def run_v2v(system, source, clip, frames, size, batch, loops=1, out_path=None, collect=True, precision="fp32",
            channels_last=True):
    """v2v streaming Animator (source encoded once, batched frames, inference_mode)."""
    import numpy as np
    import torch

    from v2v.commands.fomm import square_resize
    from v2v.models.fomm import Animator

    if channels_last:
        system = system.to(memory_format=torch.channels_last)
        source = source.contiguous(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else None
    anim = Animator(system.kp_detector, system.generator, source, mode="relative", autocast_dtype=dtype)
    writer = None
    if out_path:
        from v2v.data.video import VideoWriter

        writer = VideoWriter(out_path, fps=30)
    preds, n, buf = [], 0, []

    def flush():
        nonlocal n
        x = torch.from_numpy(np.stack(buf)).permute(0, 3, 1, 2).float().div_(255)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        p = anim(x)
        if writer is not None:
            writer.write(p.clamp(0, 1))
        if collect:
            preds.extend(p.permute(0, 2, 3, 1).contiguous().numpy())
        n += len(buf)
        buf.clear()

    for f in frame_iter(clip, loops, frames):
        buf.append(square_resize(f, size))
        if len(buf) == batch:
            flush()
    if buf:
        flush()
    if writer is not None:
        writer.close()
    return preds if collect else n


# ----------------------------------------------------------------------------- measurements


def conv_gflops(seconds: float = 2.0) -> float:
    """Measured throughput of a big 3x3 conv (256->256 ch, 64x64, batch 4) in GFLOP/s."""
    import torch

    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval()
    x = torch.rand(4, 256, 64, 64)
    flops = 2 * 256 * 256 * 9 * 64 * 64 * 4
    with torch.inference_mode():
        conv(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            conv(x)
            n += 1
        dt = time.perf_counter() - t0
    return flops * n / dt / 1e9


def count_flops_per_frame(system, source, size) -> tuple[float, float]:
    """(per-frame loop, v2v) FLOPs per frame, counted with torch.utils.flop_counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from v2v.models.fomm import Animator, normalize_kp

    frame = torch.rand(1, 3, size, size)
    with torch.no_grad():
        kp_s = {k: v for k, v in system.kp_detector(source).items() if k in ("value", "jacobian")}
        with FlopCounterMode(display=False) as fc:
            kp_d = {k: v for k, v in system.kp_detector(frame).items() if k in ("value", "jacobian")}
            system.generator(source, normalize_kp(kp_s, kp_d, kp_d, use_relative_movement=True,
                                                  use_relative_jacobian=True), kp_s)
        official = fc.get_total_flops()
    anim = Animator(system.kp_detector, system.generator, source)
    anim(frame)
    with FlopCounterMode(display=False) as fc:
        anim(torch.rand(2, 3, size, size))
    return float(official), float(fc.get_total_flops()) / 2


def psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def rss_worker(args) -> None:
    """Subprocess: run one path on the clip, print JSON with the peak RSS."""
    import resource

    import torch

    torch.set_num_threads(args.threads)
    source = load_source(args.source, args.size)
    system = build_system(args.seed, calibration_images(source))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.mp4")
        limit = args.rss_frames * args.loops if args.rss_frames else None
        if args.rss_worker == "official":
            n = len(run_official_like(system, source, args.clip, limit, args.size, out_path=out))
        else:
            n = run_v2v(system, source, args.clip, limit, args.size, args.batch_frames, loops=args.loops,
                        out_path=out, collect=False, precision=args.precision)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # KiB -> GiB (Linux)
    print(json.dumps({"path": args.rss_worker, "frames": n, "seconds": dt, "peak_rss_gb": rss}))


def measure_rss(args, path: str, loops: int = 1) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--rss-worker", path, "--loops", str(loops),
           "--clip", args.clip, "--source", args.source, "--size", str(args.size), "--threads", str(args.threads),
           "--batch-frames", str(args.batch_frames), "--seed", str(args.seed), "--precision", "fp32",
           "--rss-frames", str(args.rss_frames or 0)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"RSS worker {path} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=16, help="driving frames for the throughput comparison (default 16)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch-frames", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="also time v2v in bf16 and print its PSNR vs fp32")
    ap.add_argument("--clip", default=DEFAULT_CLIP)
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses on the full clip")
    ap.add_argument("--rss-frames", type=int, default=0,
                    help="peak-RSS runs use only the first N frames of the clip (0 = the whole clip, the default)")
    ap.add_argument("--rss-only", choices=("all", "official", "v2v", "v2v4"), default=None,
                    help="only run the peak-RSS subprocess(es) and print them")
    ap.add_argument("--device", default="cpu", help="only cpu is benchmarked here")
    ap.add_argument("--rss-worker", choices=("official", "v2v"), help=argparse.SUPPRESS)
    ap.add_argument("--loops", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for p in (args.clip, args.source):
        if not os.path.exists(p):
            print(f"error: {p} not found (needs ../shared beside the checkout, or pass --clip/--source)", file=sys.stderr)
            return 2
    if args.rss_worker:
        rss_worker(args)
        return 0

    if args.rss_only:
        which = ["official", "v2v", "v2v4"] if args.rss_only == "all" else [args.rss_only]
        for w in which:
            r = measure_rss(args, "v2v" if w == "v2v4" else w, loops=4 if w == "v2v4" else 1)
            print(f"peak RSS {w}: {r['peak_rss_gb']:.3f} GB, {r['frames']} frames, {r['seconds']:.0f} s", flush=True)
        return 0

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    print(f"fomm bench: vox-256 config, random weights, {args.size}x{args.size}, {args.frames} frames, "
          f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs")
    source = load_source(args.source, args.size)
    calib = calibration_images(source)
    system = build_system(args.seed, calib)
    gconv = conv_gflops()
    f_off, f_v2v = count_flops_per_frame(system, source, args.size)

    # warm up both paths on 2 frames, then time them on the same frames
    run_official_like(system, source, args.clip, 2, args.size)
    run_v2v(build_system(args.seed, calib), source, args.clip, 2, args.size, args.batch_frames)
    t0, c0 = time.perf_counter(), time.process_time()
    ref = run_official_like(system, source, args.clip, args.frames, args.size)
    t_off, c_off = time.perf_counter() - t0, time.process_time() - c0
    sys_v2v = build_system(args.seed, calib)
    t0, c0 = time.perf_counter(), time.process_time()
    ours = run_v2v(sys_v2v, source, args.clip, args.frames, args.size, args.batch_frames)
    t_v2v, c_v2v = time.perf_counter() - t0, time.process_time() - c0
    diff = float(np.max(np.abs(np.stack(ref) - np.stack(ours))))
    fps_off, fps_v2v = len(ref) / t_off, len(ours) / t_v2v
    print(f"machine conv throughput: {gconv:.1f} GFLOP/s (3x3 conv 256->256 @64x64, batch 4)")
    print(f"FLOPs/frame: per-frame loop {f_off / 1e9:.1f} GFLOP, v2v {f_v2v / 1e9:.1f} GFLOP")
    print(f"per-frame loop: {fps_off:.3f} fps ({1 / fps_off:.3f} s/frame, {f_off * fps_off / 1e9:.1f} GFLOP/s = "
          f"{100 * f_off * fps_off / 1e9 / gconv:.0f}% of conv peak)")
    print(f"v2v:            {fps_v2v:.3f} fps ({1 / fps_v2v:.3f} s/frame, {f_v2v * fps_v2v / 1e9:.1f} GFLOP/s = "
          f"{100 * f_v2v * fps_v2v / 1e9 / gconv:.0f}% of conv peak)")
    print(f"CPU time per frame: per-frame loop {c_off / len(ref):.2f} s, v2v {c_v2v / len(ours):.2f} s "
          f"(ratio {c_off / len(ref) / (c_v2v / len(ours)):.2f}x; robust to other load on the machine)")
    print(f"output: std {np.stack(ours).std():.3f} over frames and pixels (a real picture, not a constant)")
    line = (f"fomm animate {args.size}: v2v {fps_v2v:.3f} fps, per-frame loop {fps_off:.3f} fps, "
            f"ratio {fps_v2v / fps_off:.2f}x, max|diff| {diff:.1e}")
    if args.precision == "bf16":
        sys_bf = build_system(args.seed, calib)
        run_v2v(sys_bf, source, args.clip, 2, args.size, args.batch_frames, precision="bf16")
        t0 = time.perf_counter()
        bf = run_v2v(sys_bf, source, args.clip, args.frames, args.size, args.batch_frames, precision="bf16")
        t_bf = time.perf_counter() - t0
        print(f"v2v bf16:       {len(bf) / t_bf:.3f} fps, {t_v2v / t_bf:.2f}x fp32 v2v, "
              f"PSNR vs fp32 {psnr(np.stack(bf), np.stack(ours)):.1f} dB")
    if not args.no_rss:
        r_off = measure_rss(args, "official")
        r_v2v = measure_rss(args, "v2v")
        r_v2v4 = measure_rss(args, "v2v", loops=4)
        print(f"peak RSS on {os.path.basename(args.clip)} ({r_off['frames']} frames): per-frame loop "
              f"{r_off['peak_rss_gb']:.2f} GB ({r_off['seconds']:.0f} s), v2v {r_v2v['peak_rss_gb']:.2f} GB "
              f"({r_v2v['seconds']:.0f} s); v2v on the clip looped 4x ({r_v2v4['frames']} frames): "
              f"{r_v2v4['peak_rss_gb']:.2f} GB ({100 * (r_v2v4['peak_rss_gb'] / r_v2v['peak_rss_gb'] - 1):+.1f}%)")
        line += f", peak RSS {r_v2v['peak_rss_gb']:.2f} GB (loop {r_off['peak_rss_gb']:.2f} GB)"
    print(line)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
