#!/usr/bin/env python
"""Benchmark style-dvdgan generation at the official 128x128 configuration with random weights.

Prints the CPU (model, ISA flags, torch CPU capability) and the load average, then for one
``B x T`` generator forward (official sky/landscape-128 network: ch_g 32, start_fp 2, max_fp 5,
T = 25 frames):

- videos per second (per wall second and per CPU second, so a shared machine is visible) with the
  batched modulated conv (v2v's default) and with the official grouped conv (per-sample weights,
  ``groups = B*(T-1)``), their ratio and max |diff|;
- GFLOP per video (torch's FlopCounterMode) and achieved GFLOP per CPU-second against this machine's
  measured fp32 conv throughput (a 3x3 conv, 256 channels at 64x128);
- bf16 (torch.autocast) speed and PSNR vs fp32, with whether this CPU runs bf16 natively;
- peak RSS.

    python tools/bench_style_dvdgan.py                      # official 128x128, T=25, B=1
    python tools/bench_style_dvdgan.py --batch 2 --reps 3 --no-bf16
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time

from v2v.bench import conv_gflops


def timed(fn, reps: int):
    """(output of the last call, wall s per call, CPU s per call) after one warm-up call."""
    out = fn()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        out = fn()
    return out, (time.perf_counter() - w0) / reps, (time.process_time() - c0) / reps


def main(argv=None) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from v2v.models.style_dvdgan import StyleDVDGANConfig, StyleDVDGenerator
    from v2v.nn.stylegan2 import ModulatedConv2d
    from v2v.precision import cpu_line, native_modes

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--ch-g", type=int, default=32)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    print(cpu_line())
    print(f"load average {os.getloadavg()[0]:.1f} (1 min); torch threads {torch.get_num_threads()}")
    d = StyleDVDGANConfig()
    g = StyleDVDGenerator(a.resolution, a.frames, 3, a.ch_g, d.start_fp, d.max_fp, d.up_blocks_per_rnn,
                          d.gru_layers, d.style_dim, "batched").eval().requires_grad_(False)
    state = {k: v.clone() for k, v in g.state_dict().items()}
    n_params = sum(p.numel() for p in g.parameters())
    x = torch.rand(a.batch, 3, a.resolution, a.resolution)
    print(f"generator {a.resolution}x{a.resolution}, ch_g {a.ch_g}, depth {g.depth}, {n_params / 1e6:.1f} M params; "
          f"B={a.batch} videos x T={a.frames} frames")

    def set_fused(flag):
        for m in g.modules():
            if isinstance(m, ModulatedConv2d):
                m.fused = flag

    def run():
        g.load_state_dict(state)  # same spectral-norm state for every call
        with torch.no_grad():
            return g(x, a.frames)

    with FlopCounterMode(display=False) as fc:
        run()
    gflop = fc.get_total_flops() / 1e9 / a.batch
    peak_conv = conv_gflops()
    res = {}
    for name, fused in (("batched", False), ("grouped (official)", True)):
        set_fused(fused)
        res[name] = timed(run, a.reps)
    set_fused(False)
    yb, wb, cb = res["batched"]
    yg, wg, cg = res["grouped (official)"]
    for name, (_, w, c) in res.items():
        print(f"{name:20s}: {a.batch / w:7.3f} videos/s wall ({w:.2f} s), {a.batch / c:7.3f} videos per CPU-s; "
              f"{gflop * a.batch / c:6.1f} GFLOP per CPU-s = {100 * gflop * a.batch / c / peak_conv:.0f}% of the "
              f"measured conv throughput")
    print(f"batched vs grouped: {wg / wb:.2f}x faster (wall), {cg / cb:.2f}x (CPU time); "
          f"max|diff| {float((yb - yg).abs().max()):.2e}")
    print(f"GFLOP per video {gflop:.1f}; measured fp32 conv throughput {peak_conv:.1f} GFLOP per CPU-s")
    if not a.no_bf16:
        why = native_modes("cpu").get("bf16")

        def run_bf16():
            g.load_state_dict(state)
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                return g(x, a.frames).float()

        y16, w16, c16 = timed(run_bf16, max(1, a.reps // 2))
        mse = float(((y16[:, 1:] - yb[:, 1:]) ** 2).mean())
        psnr = 10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))).item()
        print(f"bf16 autocast: {a.batch / w16:.3f} videos/s wall, {wb / w16:.2f}x fp32 speed (wall), "
              f"{cb / c16:.2f}x (CPU time); PSNR vs fp32 {psnr:.1f} dB; "
              f"{'native bf16' if why is None else 'NOT native here (emulated): ' + why}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
