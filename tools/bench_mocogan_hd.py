"""Benchmark MoCoGAN-HD video synthesis: StyleGAN2 rendering of a latent trajectory, random weights.

    python tools/bench_mocogan_hd.py [--sizes 256,1024] [--frames 4] [--reps 2] [--threads N] [--bf16]

For each size (official config-f widths, latent 512, n_mlp 8): one video of ``--frames`` frames
(LSTM trajectory + synthesis of all frames in one batch, per-video noise maps), timed as

- **grouped**: the official formulation (per-sample modulated weights, one grouped conv over the
  batch; ``fused_modconv=True``) - the reference path;
- **batched**: input-scale / shared-weight conv / output-scale (``fused_modconv=False``), the same
  math as one dense conv; printed as a speed ratio against grouped and max |diff|;
- **bf16** (``--bf16``): batched path under ``torch.autocast(cpu, bfloat16)``, speed ratio and PSNR
  against fp32 (this CPU's native support is printed from :mod:`v2v.precision`; without
  AVX512-BF16/AMX bf16 is emulated).

Printed: the CPU line (model, ISA flags, torch CPU capability) and load average; frames/s; model
GFLOP per frame (``torch.utils.flop_counter``) and achieved GFLOP/s against the measured
throughput of a dense 3x3 conv (512->512 at 64x64) on this machine; peak RSS.
"""
from __future__ import annotations

import argparse
import functools
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from v2v.models.mocogan_hd import MotionGenerator
from v2v.nn.stylegan2 import StyleGAN2Generator
from v2v.precision import cpu_line, native_modes


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def conv_gflops(reps: int = 3) -> float:
    """Measured dense conv throughput: 3x3, 512->512, 64x64, batch 1 (GFLOP/s)."""
    x, w = torch.randn(1, 512, 64, 64), torch.randn(512, 512, 3, 3)
    torch.nn.functional.conv2d(x, w, padding=1)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.nn.functional.conv2d(x, w, padding=1)
        best = min(best, time.perf_counter() - t)
    return 2 * 512 * 512 * 9 * 64 * 64 / best / 1e9


def flops_per_frame(g: StyleGAN2Generator, w: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    g.requires_grad_(False)
    with FlopCounterMode(display=False) as fc:
        g.synthesis(w[:1])
    return fc.get_total_flops()


def render(g, motion, z, frames, noise):
    with torch.no_grad():
        lat = motion(g.mapping(z), frames).latents
        b, t, d = lat.shape
        nz = [n.unsqueeze(1).expand(b, t, *n.shape[1:]).reshape(b * t, *n.shape[1:]) for n in noise]
        return g.synthesis(lat.reshape(b * t, d), nz)


def render_bf16(*args):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return render(*args)


def timed(fn, reps):
    out = fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="256,1024")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--bf16", action="store_true", help="also time bf16 autocast (emulated on CPUs without bf16)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(cpu_line())
    print(f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f} "
          f"(1 min; > cores means the timings are inflated by other processes)")
    peak = conv_gflops()
    print(f"measured dense conv throughput (3x3 512->512 @64x64): {peak:.1f} GFLOP/s")
    why = native_modes("cpu").get("bf16")
    for size in (int(s) for s in args.sizes.split(",")):
        torch.manual_seed(0)
        g = StyleGAN2Generator(size, 512, 8).eval()
        gb = StyleGAN2Generator(size, 512, 8, fused_modconv=False).eval()
        gb.load_state_dict(g.state_dict())
        motion = MotionGenerator(512, 384, 384).eval()
        z = torch.randn(1, 512)
        noise = g.make_noise(1)
        fl = flops_per_frame(g, torch.randn(1, 512))
        tg, og = timed(functools.partial(render, g, motion, z, args.frames, noise), args.reps)
        tb, ob = timed(functools.partial(render, gb, motion, z, args.frames, noise), args.reps)
        n = args.frames
        print(f"\n{size}x{size}, {n} frames, {fl / 1e9:.1f} GFLOP/frame")
        print(f"  grouped (official) : {n / tg:7.3f} frames/s  {fl * n / tg / 1e9:6.1f} GFLOP/s "
              f"({100 * fl * n / tg / 1e9 / peak:.0f}% of measured conv)")
        print(f"  batched            : {n / tb:7.3f} frames/s  {fl * n / tb / 1e9:6.1f} GFLOP/s  "
              f"x{tg / tb:.2f} vs grouped, max|diff| / max|out| {float((og - ob).abs().max() / og.abs().max()):.1e}")
        if args.bf16:
            t16, o16 = timed(functools.partial(render_bf16, gb, motion, z, args.frames, noise), max(1, args.reps - 1))
            # PSNR over the fp32 output's range (random weights do not stay in [-1, 1])
            rng = float(ob.max() - ob.min())
            mse = float(((o16.float() - ob) ** 2).mean())
            psnr = 10 * torch.log10(torch.tensor(rng**2 / max(mse, 1e-20)))
            note = "native" if why is None else "EMULATED (no native bf16 on this CPU)"
            print(f"  bf16 autocast      : {n / t16:7.3f} frames/s  x{tb / t16:.2f} vs fp32 batched, "
                  f"PSNR {float(psnr):.1f} dB vs fp32 ({note})")
        print(f"  peak RSS so far {peak_rss_mb():.0f} MB")
        del g, gb
    return 0


if __name__ == "__main__":
    sys.exit(main())
