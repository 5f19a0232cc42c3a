"""Benchmark `v2v animate` (FOMM) against the official demo.py path, same process, same checkpoint file.

    python tools/bench_fomm.py                       # whole 265-frame clip, 2 interleaved runs
    python tools/bench_fomm.py --frames 96 --runs 2  # the first 96 frames only
    python tools/bench_fomm.py --rss --profile --onnx

What is compared (all three read the same official-format checkpoint file and YAML from a temp dir):

- official: demo.py as written -- ``load_checkpoints`` (networks built, the whole file
  ``torch.load``-ed, state dicts loaded), the driving video read whole with ``imageio.get_reader``,
  frames and source resized up front to float64 arrays (with v2v's image rule, so that both sides
  see the same pixels: demo.py's ``skimage.transform.resize`` drops alpha instead), ``make_animation``
  (one frame at a time, the source re-encoded for every frame), ``imageio.mimsave`` at the end.
- v2v fast and v2v exact: :func:`v2v.commands.fomm.animate_file`, the function `v2v animate`
  calls (default fast path; ``--exact``), with the same options (relative, adapt-scale).

The checkpoint is an official ``Logger.save_cpk``-layout vox-256 file written by this script with
random weights (BatchNorm statistics calibrated on the source so the output is a real picture):
generator, kp_detector, discriminator and the optimizer entries, torch-1.0 legacy serialization,
239 MiB like the released ``vox-cpk.pth.tar``.

Printed: the CPU line (model, ISA flags, torch CPU capability), load average, fps of each path
(median of --runs interleaved runs) and the ratios, max|diff| of both v2v paths against the
official over the frames (>= 64 by default, with motion), FLOPs per frame and achieved GFLOP/s
against the measured conv limit (64->64 3x3 conv, channels_last and NCHW), and optionally peak
RSS per stage (--rss, each path in its own process), a per-conv-layer profile (--profile),
onnxruntime vs PyTorch (--onnx), and every precision mode (native ones timed with PSNR against
fp32, emulated ones showing the CLI's refusal and how long it took).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULT_CLIP = os.path.join(REPO, "..", "shared", "data", "animation", "driving", "00.mp4")
DEFAULT_SOURCE = os.path.join(REPO, "..", "shared", "data", "animation", "source", "statue-02.png")
CONFIG = os.path.join(REPO, "configs", "fomm", "vox-256.yaml")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- the checkpoint


def official_yaml(v2v_yaml: str) -> dict:
    """Our vox-256 config in the official YAML layout (what ships with the released checkpoint)."""
    from v2v.config import load_yaml

    m = load_yaml(v2v_yaml)["model"]
    gen = dict(m["generator"])
    gen["dense_motion_params"] = gen.pop("dense_motion")
    return {"dataset_params": {"frame_shape": [m["image_size"], m["image_size"], 3]},
            "model_params": {"common_params": {k: m[k] for k in ("num_kp", "num_channels", "estimate_jacobian")},
                             "kp_detector_params": m["kp_detector"], "generator_params": gen,
                             "discriminator_params": m["discriminator"]},
            "train_params": {"loss_weights": {"generator_gan": 0, "discriminator_gan": 1,
                                              "feature_matching": [10, 10, 10, 10], "perceptual": [10] * 5,
                                              "equivariance_value": 10, "equivariance_jacobian": 10}}}


def make_official_checkpoint(folder: str, source_path: str, size: int = 256) -> tuple[str, str]:
    """Write ``vox-256.yaml`` + ``vox-cpk.pth.tar`` (official layout, random weights) into ``folder``."""
    import torch
    import yaml

    from v2v.compat.fomm import PARTS, config_from_official, to_official_state_dict
    from v2v.models.fomm import FOMMSystem

    raw = official_yaml(CONFIG)
    cfg_path = os.path.join(folder, "vox-256.yaml")
    with open(cfg_path, "w") as f:
        yaml.safe_dump(raw, f)
    torch.manual_seed(0)
    system = FOMMSystem(config_from_official(raw))
    src = load_source(source_path, size)
    with torch.no_grad():
        jh = system.kp_detector.jacobian_head  # small random jacobian head: jacobians not all identity
        torch.nn.init.kaiming_uniform_(jh.weight, a=math.sqrt(5))
        jh.weight.mul_(0.12)
        jh.bias.add_(torch.randn_like(jh.bias) * 0.05)
        system.generator.head.weight.mul_(0.6)
        bns = [m for m in system.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for m in bns:  # running statistics = batch statistics of a reconstruction of the source
            m.reset_running_stats()
            m.momentum = None
        system.train()
        calib = torch.cat([src, src.flip(-1), src.flip(-2)])
        system.reconstruct(calib[:1].expand(3, -1, -1, -1), calib)
        for m in bns:
            m.momentum = 0.1
    ckpt = {part: to_official_state_dict(part, getattr(system, part).state_dict()) for part in PARTS}
    for part in PARTS:  # Logger.save_cpk also stores the optimizers (param groups; moments stripped)
        opt = torch.optim.Adam(getattr(system, part).parameters(), lr=2e-4, betas=(0.5, 0.999))
        ckpt[f"optimizer_{part}"] = opt.state_dict()
    ckpt["epoch"] = 99
    path = os.path.join(folder, "vox-cpk.pth.tar")
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    return cfg_path, path


def load_source(path: str, size: int):
    import torch

    from v2v.commands.fomm import square_resize
    from v2v.data.image import read_image

    img = square_resize(read_image(path), size)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255)


# ----------------------------------------------------------------------------- the official path


def official_demo(config_path, checkpoint_path, source_path, driving_path, out_path, frames=None, collect=None):
    """demo.py: load_checkpoints, read + resize everything, make_animation(relative, adapt_scale), mimsave."""
    import imageio
    import numpy as np
    import torch
    import yaml
    from skimage import img_as_ubyte

    from v2v.commands.fomm import square_resize
    from v2v.compat.fomm import checkpoint_filter_fn, config_from_official
    from v2v.data.image import read_image
    from v2v.models.fomm import FOMMSystem, normalize_kp

    with open(config_path) as f:
        config = yaml.safe_load(f)
    system = FOMMSystem(config_from_official(config))  # KPDetector(...), OcclusionAwareGenerator(...)
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    for part in ("generator", "kp_detector"):
        sd = checkpoint_filter_fn({f"{part}.{k}": v for k, v in checkpoint[part].items()})
        getattr(system, part).load_state_dict({k[len(part) + 1:]: v for k, v in sd.items()})
    generator, kp_detector = system.generator.eval(), system.kp_detector.eval()

    reader = imageio.get_reader(driving_path)
    fps = reader.get_meta_data()["fps"]
    driving_video = []
    try:
        for im in reader:
            driving_video.append(im)
            if frames is not None and len(driving_video) >= frames:
                break
    except RuntimeError:
        pass
    reader.close()
    # the same image rule as v2v (RGBA over white, centre square, INTER_AREA) so the outputs are
    # comparable; then float64 in [0,1] as skimage's resize(frame, (256, 256)) returns
    source_image = square_resize(read_image(source_path), 256) / 255.0
    driving_video = [square_resize(frame[..., :3], 256) / 255.0 for frame in driving_video]

    with torch.no_grad():  # make_animation(relative=True, adapt_movement_scale=True)
        predictions = []
        source = torch.tensor(source_image[np.newaxis].astype(np.float32)).permute(0, 3, 1, 2)
        driving = torch.tensor(np.array(driving_video)[np.newaxis].astype(np.float32)).permute(0, 4, 1, 2, 3)
        kp_source = kp_detector(source)
        kp_source = {k: kp_source[k] for k in ("value", "jacobian")}
        kp_driving_initial = None
        for frame_idx in range(driving.shape[2]):
            driving_frame = driving[:, :, frame_idx]
            kp_driving = kp_detector(driving_frame)
            kp_driving = {k: kp_driving[k] for k in ("value", "jacobian")}
            if kp_driving_initial is None:
                kp_driving_initial = kp_driving
            kp_norm = normalize_kp(kp_source=kp_source, kp_driving=kp_driving,
                                   kp_driving_initial=kp_driving_initial, use_relative_movement=True,
                                   use_relative_jacobian=True, adapt_movement_scale=True)
            out = generator(source, kp_source=kp_source, kp_driving=kp_norm)
            predictions.append(np.transpose(out["prediction"].data.cpu().numpy(), [0, 2, 3, 1])[0])
    if collect is not None:
        collect.extend(predictions)
    imageio.mimsave(out_path, [img_as_ubyte(np.clip(frame, 0, 1)) for frame in predictions], fps=fps)
    return len(predictions)


def v2v_animate(config_path, checkpoint_path, source_path, driving_path, out_path, exact, batch, frames=None,
                collect=None, precision="fp32"):
    """`v2v animate` (relative, adapt-scale) through the function the CLI calls."""
    from v2v.commands.fomm import animate_file

    clip = driving_path
    if frames is not None:  # the same first N frames for every path
        clip = first_frames_clip(driving_path, frames)

    def sink(pred):
        if collect is not None:
            collect.extend(pred.permute(0, 2, 3, 1).float().numpy())

    info = animate_file(config_path, checkpoint_path, source_path, clip, out_path, mode="relative",
                        adapt_scale=True, batch_frames=batch, exact=exact, precision=precision, device="cpu",
                        progress=False, log=lambda m: None, on_frames=sink)
    return info["frames"]


_CLIPS: dict = {}


def first_frames_clip(path: str, n: int, loops: int = 1) -> str:
    """The first ``n`` frames (repeated ``loops`` times) as an mp4 that every path then reads."""
    key = (path, n, loops)
    if key not in _CLIPS:
        from v2v.data.video import VideoWriter, open_video

        d = tempfile.mkdtemp(prefix="fomm_clip_")
        out = os.path.join(d, "clip.mp4")
        with open_video(path) as r:
            fr = r.read(max_frames=n)
            fps = r.fps
        with VideoWriter(out, fps=fps, quality=10) as w:
            for _ in range(loops):
                for f in fr:
                    w.write(f)
        _CLIPS[key] = out
    return _CLIPS[key]


# ----------------------------------------------------------------------------- measurements


def conv_limit(channels_last: bool, seconds: float = 2.0) -> float:
    """GFLOP/s of a 64->64 3x3 conv on 4x64x128x128 (the machine's practical conv peak)."""
    import torch

    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    x = torch.rand(4, 64, 128, 128)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    flops = 2 * 64 * 64 * 9 * 128 * 128 * 4
    with torch.inference_mode():
        conv(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            conv(x)
            n += 1
    return flops * n / (time.perf_counter() - t0) / 1e9


def flops_per_frame(cfg_path: str, ckpt_path: str) -> tuple[float, float]:
    """(official, v2v) FLOPs per frame (torch.utils.flop_counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from v2v.commands.fomm import load_animation_model
    from v2v.models.fomm import Animator, normalize_kp

    kp, gen, size = load_animation_model(cfg_path, ckpt_path, exact=True, device="cpu")
    src, frame = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
    with torch.no_grad():
        kp_s = {k: v for k, v in kp(src).items() if k in ("value", "jacobian")}
        with FlopCounterMode(display=False) as fc:
            kp_d = {k: v for k, v in kp(frame).items() if k in ("value", "jacobian")}
            gen(src, normalize_kp(kp_s, kp_d, kp_d, use_relative_movement=True, use_relative_jacobian=True), kp_s)
    official = fc.get_total_flops()
    anim = Animator(kp, gen, src)
    anim(frame)
    with FlopCounterMode(display=False) as fc:
        anim(torch.rand(2, 3, size, size))
    return float(official), float(fc.get_total_flops()) / 2


def psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def profile_layers(cfg_path: str, ckpt_path: str, batch: int, frames: int = 8) -> list[str]:
    """Per-conv-layer time and GFLOP/s of the fast path (forward hooks), slowest first."""
    import torch

    from v2v.commands.fomm import load_animation_model
    from v2v.models.fomm import Animator

    kp, gen, size = load_animation_model(cfg_path, ckpt_path, exact=False, device="cpu")
    stats: dict[str, list] = {}
    t_start: dict = {}

    def pre(name):
        def f(mod, inp):
            t_start[name] = time.perf_counter()
        return f

    def post(name):
        def f(mod, inp, out):
            dt = time.perf_counter() - t_start[name]
            x = inp[0]
            fl = 2 * out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            s = stats.setdefault(name, [0.0, 0, tuple(x.shape[1:]), mod.out_channels, mod.kernel_size[0]])
            s[0] += dt
            s[1] += fl
        return f

    for root, prefix in ((kp, "kp_detector"), (gen, "generator")):
        for name, m in root.named_modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_pre_hook(pre(f"{prefix}.{name}"))
                m.register_forward_hook(post(f"{prefix}.{name}"))
    src = torch.rand(1, 3, size, size)
    anim = Animator(kp, gen, src)
    x = torch.rand(batch, 3, size, size)
    anim(x)
    stats.clear()
    t0 = time.perf_counter()
    for _ in range(max(1, frames // batch)):
        anim(x)
    total = time.perf_counter() - t0
    conv_t = sum(s[0] for s in stats.values())
    rows = [(f"profile (fast path, batch {batch}, {max(1, frames // batch) * batch} frames): convs {conv_t:.1f} s "
             f"of {total:.1f} s; slowest conv layers (time, GFLOP/s, input C,H,W -> out, kernel):")]
    for name, (t, fl, shp, cout, k) in sorted(stats.items(), key=lambda kv: -kv[1][0])[:12]:
        rows.append(f"  {name:55s} {t:6.2f} s {fl / t / 1e9:6.1f} GFLOP/s  {shp} -> {cout}, {k}x{k}")
    return rows


# ----------------------------------------------------------------------------- RSS worker


def rss_worker(args) -> None:
    """Subprocess: one path on a clip; prints JSON with RSS after imports, after load, peak."""
    import torch

    import v2v.commands.fomm as cmd

    torch.set_num_threads(args.threads)
    rec = {"after_imports_mb": rss_mb()}
    if args.rss_worker == "official":
        import imageio  # noqa: F401
        import skimage.transform  # noqa: F401

        rec["after_imports_mb"] = rss_mb()
    orig = cmd.load_animation_model

    def hooked(*a, **k):
        out = orig(*a, **k)
        rec["after_load_mb"] = rss_mb()
        return out

    cmd.load_animation_model = hooked
    clip = args.clip if not args.rss_frames else first_frames_clip(args.clip, args.rss_frames, args.loops)
    if args.loops > 1 and not args.rss_frames:
        clip = first_frames_clip(args.clip, 10 ** 6, args.loops)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.mp4")
        if args.rss_worker == "official":
            n = official_demo(args.rss_config, args.rss_checkpoint, args.source, clip, out)
        else:
            from v2v.commands.fomm import animate_file

            n = animate_file(args.rss_config, args.rss_checkpoint, args.source, clip, out, mode="relative",
                             adapt_scale=True, batch_frames=args.batch_frames, exact=args.rss_worker == "exact",
                             precision="fp32", device="cpu", progress=False, log=lambda m: None)["frames"]
    rec.update(path=args.rss_worker, frames=n, seconds=time.perf_counter() - t0, peak_mb=peak_rss_mb())
    print(json.dumps(rec))


def measure_rss(args, path: str, cfg: str, ckpt: str, loops: int = 1) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--rss-worker", path, "--loops", str(loops),
           "--clip", args.clip, "--source", args.source, "--threads", str(args.threads),
           "--batch-frames", str(args.batch_frames), "--rss-frames", str(args.rss_frames or 0),
           "--rss-config", cfg, "--rss-checkpoint", ckpt]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"RSS worker {path} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=0, help="first N driving frames (default 0 = the whole clip)")
    ap.add_argument("--runs", type=int, default=2, help="interleaved runs of each path (default 2; medians)")
    ap.add_argument("--batch-frames", type=int, default=2, help="the CLI's default (2)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--clip", default=DEFAULT_CLIP)
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    ap.add_argument("--rss", action="store_true", help="peak RSS of each path (own process) + the 4x clip")
    ap.add_argument("--rss-frames", type=int, default=0, help="RSS runs on the first N frames (0 = whole clip)")
    ap.add_argument("--profile", action="store_true", help="per-conv-layer profile of the fast path")
    ap.add_argument("--onnx", action="store_true", help="onnxruntime vs PyTorch fp32 on the same frames")
    ap.add_argument("--no-official", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rss-worker", choices=("official", "fast", "exact"), help=argparse.SUPPRESS)
    ap.add_argument("--rss-config", help=argparse.SUPPRESS)
    ap.add_argument("--rss-checkpoint", help=argparse.SUPPRESS)
    ap.add_argument("--loops", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for p in (args.clip, args.source):
        if not os.path.exists(p):
            print(f"error: {p} not found (needs ../shared beside the checkout, or pass --clip/--source)", file=sys.stderr)
            return 2
    if args.rss_worker:
        rss_worker(args)
        return 0

    import numpy as np
    import torch

    from v2v.precision import cpu_line, native_modes

    torch.set_num_threads(args.threads)
    frames = args.frames or None
    print(cpu_line())
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          f"(other engineers share this machine); torch threads {args.threads}")
    tmp = tempfile.mkdtemp(prefix="fomm_bench_")
    cfg_path, ckpt_path = make_official_checkpoint(tmp, args.source)
    print(f"official-format checkpoint: {os.path.getsize(ckpt_path) / 2 ** 20:.0f} MiB (generator, kp_detector, "
          f"discriminator, optimizers; legacy serialization) + official YAML in a temp dir")
    cl, nchw = conv_limit(True), conv_limit(False)
    f_off, f_v2v = flops_per_frame(cfg_path, ckpt_path)
    print(f"conv limit (64->64 3x3, 4x128x128): channels_last {cl:.1f} GFLOP/s, NCHW {nchw:.1f} GFLOP/s; "
          f"FLOPs/frame: official {f_off / 1e9:.1f} G, v2v {f_v2v / 1e9:.1f} G (source encoded once)")

    times: dict[str, list] = {"official": [], "fast": [], "exact": []}
    outs: dict[str, list] = {}
    out_mp4 = os.path.join(tmp, "out.mp4")
    clip = first_frames_clip(args.clip, frames) if frames else args.clip
    for r in range(args.runs):
        for path in ("official", "fast", "exact"):
            if path == "official" and args.no_official:
                continue
            col = [] if r == 0 else None
            t0 = time.perf_counter()
            if path == "official":
                n = official_demo(cfg_path, ckpt_path, args.source, clip, out_mp4, collect=col)
            else:
                n = v2v_animate(cfg_path, ckpt_path, args.source, clip, out_mp4, exact=path == "exact",
                                batch=args.batch_frames, collect=col)
            dt = time.perf_counter() - t0
            times[path].append(n / dt)
            if col is not None:
                outs[path] = np.stack(col)
            print(f"  run {r + 1} {path:8s}: {n} frames in {dt:6.1f} s = {n / dt:.3f} fps", flush=True)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    n = len(outs["fast"])
    moving = float(np.abs(outs["fast"] - outs["fast"][:1]).mean(axis=(1, 2, 3)).max())
    print(f"whole-process fps (median of {args.runs}): " + ", ".join(f"{k} {v:.3f}" for k, v in med.items()))
    if "official" in med:
        d_fast = float(np.abs(outs["fast"] - outs["official"]).max())
        d_exact = float(np.abs(outs["exact"] - outs["official"]).max())
        print(f"ratio vs official: fast {med['fast'] / med['official']:.2f}x (target 1.6x), "
              f"exact {med['exact'] / med['official']:.2f}x (target 1.25x)")
        print(f"max|diff| vs official over {n} frames (largest mean motion vs frame 0: {moving:.3f}): "
              f"fast {d_fast:.2e} (bound 1e-3), exact {d_exact:.2e} (bound 1e-4)")
        print(f"achieved GFLOP/s (whole process): official {f_off * med['official'] / 1e9:.1f}, "
              f"fast {f_v2v * med['fast'] / 1e9:.1f}, exact {f_v2v * med['exact'] / 1e9:.1f} "
              f"(conv limit channels_last {cl:.1f})")

    for mode, why in native_modes("cpu").items():
        if mode == "fp32":
            continue
        if why is None:
            col, t0 = [], time.perf_counter()
            v2v_animate(cfg_path, ckpt_path, args.source, clip, out_mp4, exact=False, batch=args.batch_frames,
                        collect=col, precision=mode)
            print(f"precision {mode}: {len(col) / (time.perf_counter() - t0):.3f} fps, PSNR vs fp32 "
                  f"{psnr(np.stack(col), outs['fast']):.1f} dB")
        else:
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "v2v", "animate", "--config", cfg_path, "--checkpoint",
                                  ckpt_path, "--source", args.source, "--driving", args.clip, "--out", out_mp4,
                                  "--precision", mode], capture_output=True, text=True, check=False)
            print(f"precision {mode}: `v2v animate --precision {mode}` exit {res.returncode} after "
                  f"{time.perf_counter() - t0:.2f} s (process start included): {res.stderr.strip()}")

    if args.onnx:
        from v2v.commands.fomm import load_animation_model
        from v2v.export.fomm_onnx import OnnxFOMM, export_fomm_onnx
        from v2v.models.fomm import Animator

        kp, gen, size = load_animation_model(cfg_path, ckpt_path, exact=True, device="cpu")
        export_fomm_onnx(kp, gen, os.path.join(tmp, "onnx"), size)
        x = torch.rand(args.batch_frames, 3, size, size)
        src = torch.rand(1, 3, size, size)
        ort_anim = OnnxFOMM(os.path.join(tmp, "onnx"), threads=args.threads).animator(src.numpy())
        fkp, fgen, _ = load_animation_model(cfg_path, ckpt_path, exact=False, device="cpu")
        res = {}
        for name, anim in (("onnxruntime", ort_anim), ("torch fp32 exact", Animator(kp, gen, src, exact=True)),
                           ("torch fp32 fast", Animator(fkp, fgen, src))):
            anim(x)
            t0 = time.perf_counter()
            for _ in range(2):
                res[name] = anim(x)
            print(f"onnx: {name:18s} {2 * len(x) / (time.perf_counter() - t0):.3f} fps (model only, batch {len(x)})")
        print(f"onnx: max|diff| onnxruntime vs torch exact {float((res['onnxruntime'] - res['torch fp32 exact']).abs().max()):.1e}")

    if args.profile:
        for line in profile_layers(cfg_path, ckpt_path, args.batch_frames):
            print(line)

    if args.rss:
        rows = {p: measure_rss(args, p, cfg_path, ckpt_path) for p in ("official", "fast", "exact")}
        rows["fast 4x clip"] = measure_rss(args, "fast", cfg_path, ckpt_path, loops=4)
        for k, r in rows.items():
            print(f"RSS {k:13s} ({r['frames']} frames, {r['seconds']:.0f} s): after imports "
                  f"{r['after_imports_mb']:.0f} MB, after load {r.get('after_load_mb', float('nan')):.0f} MB, "
                  f"peak {r['peak_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
