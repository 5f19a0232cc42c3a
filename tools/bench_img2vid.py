#!/usr/bin/env python
"""Benchmark Img2Vid (seg2vid stage 2) inference at the official widths, random weights.

One run prints: the CPU model + ISA flags and torch's CPU capability; clips per CPU-second of the
v2v path (eval BN, the T refinement passes batched into one call, the T warps in one grid_sample)
and of an official-equivalent path (per-frame warp and per-frame RefineNet loop, as the official
``ops.warp`` / ``ops.refine``) with their ratio and max |diff|; GFLOP per clip (conv, conv3d,
transposed conv and linear layers counted by hooks) and achieved GFLOP/s against this machine's
measured fp32 conv throughput (a 3x3, 256-channel conv at 64x128) in the same run; peak RSS;
and with ``--precision bf16`` the bf16-autocast speed and the PSNR of its frames against fp32.
bf16 is measured even where :func:`v2v.precision.resolve_precision` refuses it for the CLI (a CPU
without AVX512-BF16/AMX emulates it): the point is to show what it costs.

    python tools/bench_img2vid.py                      # 128x256, T=4, z 1024 (bg 512 / fg 512)
    python tools/bench_img2vid.py --precision bf16 --clips 2
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

import torch
from torch import nn

from v2v.bench import conv_gflops


def count_flops(vae, args) -> float:
    """2 x multiply-adds of one eval forward (B=1) over conv/convT/conv3d/linear layers."""
    total = [0.0]

    def hook(m, inp, out):
        if isinstance(m, nn.Linear):
            total[0] += 2.0 * out.numel() * m.in_features
        elif isinstance(m, (nn.ConvTranspose2d,)):
            k = m.kernel_size[0] * m.kernel_size[1]
            total[0] += 2.0 * inp[0].numel() * m.out_channels * k
        else:
            k = 1
            for s in m.kernel_size:
                k *= s
            total[0] += 2.0 * out.numel() * (m.in_channels // m.groups) * k

    hs = [m.register_forward_hook(hook) for m in vae.modules()
          if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear))]
    with torch.no_grad():
        vae(*args)
    for h in hs:
        h.remove()
    return total[0]


def official_loop(vae, frame1, bg, fg, noise, z):
    """Official-equivalent path: per-frame warp and per-frame RefineNet calls (ops.warp / ops.refine)."""
    from v2v.ops.norm_flow_warp import norm_flow_warp

    e1, e2, e3, codex = vae.encoder(torch.cat([frame1, bg, fg], 1))
    _, codey = vae.codes(z, codex)
    flow, _fb, mask_fw, _mb = vae.decode((e1, e2, e3), codex, codey)
    warped = torch.stack([norm_flow_warp(frame1, flow[:, :, t] * mask_fw[:, t:t + 1]) for t in range(vae.T)], 1)
    m = mask_fw.unsqueeze(2)
    return torch.stack([vae.refine_net(warped[:, t] * m[:, t] + noise * (1 - m[:, t])) for t in range(vae.T)], 1)


def timed(fn, clips: int) -> tuple[float, torch.Tensor]:
    fn()  # warm-up
    t0 = time.process_time()
    for _ in range(clips):
        out = fn()
    return (time.process_time() - t0) / clips, out


def psnr(a, b) -> float:
    mse = float((a.float() - b.float()).pow(2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="128x256", help="HxW (official 128x256)")
    p.add_argument("--frames", type=int, default=4, help="predicted frames T (official 4)")
    p.add_argument("--clips", type=int, default=3, help="timed clips per path")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from v2v.models.img2vid import Img2VidModelConfig, Img2VidSystem
    from v2v.precision import cpu_line, native_modes

    h, w = (int(v) for v in a.size.split("x"))
    torch.manual_seed(a.seed)
    cfg = Img2VidModelConfig(size=[h, w], num_predicted_frames=a.frames)  # official widths
    system = Img2VidSystem.from_config(cfg, inference=True).eval()
    vae = system.vae
    g = torch.Generator().manual_seed(a.seed)
    frame1 = torch.rand(1, 3, h, w, generator=g)
    labels = torch.randint(0, cfg.num_bg_classes + cfg.num_fg_classes, (1, h // 16, w // 16), generator=g)
    labels = labels.repeat_interleave(16, 1).repeat_interleave(16, 2)
    bg, fg = system.masks(labels)
    noise = torch.randn(1, 3, h, w, generator=g)
    z = system.sample_latent(1, g)
    n_par = sum(p.numel() for p in vae.parameters())
    print(cpu_line())
    print(f"img2vid {h}x{w} T={a.frames} official widths (z {cfg.z_dim} = bg {cfg.bg_dim} + fg {cfg.fg_dim}, "
          f"{n_par / 1e6:.1f}M params), random weights, {torch.get_num_threads()} threads, B=1")
    flops = count_flops(vae, (frame1, bg, fg, noise, z))
    peak = conv_gflops()
    with torch.no_grad():
        t_ours, ours = timed(lambda: vae(frame1, bg, fg, noise, z=z)["refined"], a.clips)
        t_off, off = timed(lambda: official_loop(vae, frame1, bg, fg, noise, z), a.clips)
    print(f"v2v path: {1 / t_ours:.2f} clips per CPU-second ({t_ours:.2f} CPU-s per clip of {a.frames} frames); "
          f"official-equivalent per-frame loop: {1 / t_off:.2f} clips/CPU-s; ratio {t_off / t_ours:.2f}x; "
          f"max|diff| {float((ours - off).abs().max()):.1e}")
    print(f"{flops / 1e9:.1f} GFLOP per clip; achieved {flops / t_ours / 1e9:.1f} GFLOP/s = "
          f"{100 * flops / t_ours / 1e9 / peak:.0f}% of this machine's measured conv throughput "
          f"({peak:.1f} GFLOP per CPU-second, 3x3 conv 256ch 64x128)")
    if a.precision == "bf16":
        why = native_modes("cpu").get("bf16")
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            t_bf, bf = timed(lambda: vae(frame1, bg, fg, noise, z=z)["refined"], max(1, a.clips // 2))
        print(f"bf16 autocast: {1 / t_bf:.2f} clips/CPU-s = {t_ours / t_bf:.2f}x fp32; PSNR vs fp32 "
              f"{psnr(bf.clamp(0, 1), ours):.1f} dB" + (f" (v2v refuses bf16 here: {why})" if why else ""))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
