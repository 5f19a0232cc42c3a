"""Benchmark keyframe interpolation: clips/s per variant and achieved GFLOP/s vs the machine's conv peak.

    python tools/bench_keyframe.py [--sizes 64 256] [--frames 30] [--variants linear,flow,cvae,cgan]
                                   [--config configs/keyframe/flow_puppets.yaml --config configs/keyframe/cgan_puppets.yaml]
                                   [--repeats 2] [--threads N]

Prints the CPU model, ISA flags and torch's CPU capability, then the measured throughput of a
reference Conv2d and Conv3d (the machine's practical peak for these ops, measured in the same run),
then per variant and size: clips/s for one clip (B=1) of ``frames`` frames from two keyframes,
GFLOP per clip (convolutions and matmuls, counted by ``torch.utils.flop_counter``), achieved
GFLOP/s and its ratio to the measured conv peak, and peak RSS. Networks use the model defaults
(the poster's latent sizes, width 32) unless ``--config`` gives a ``model:`` section; the flow
variant's time includes the two OpenCV DIS flows (not counted as FLOPs). Weights are random:
speed does not depend on them.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def cpu_info() -> tuple[str, str]:
    model, flags = platform.processor() or "unknown", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    have = set(line.split(":", 1)[1].split())
                    keep = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
                            "avx512_bf16", "amx_tile", "amx_bf16"]
                    flags = " ".join(k for k in keep if k in have)
    except OSError:
        pass
    return model, flags


def timed(fn, repeats: int, warmup: bool = True) -> float:
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def conv_peak(repeats: int) -> tuple[float, float]:
    import torch

    x2, c2 = torch.randn(16, 64, 64, 64), torch.nn.Conv2d(64, 64, 3, padding=1)
    x3, c3 = torch.randn(1, 32, 30, 64, 64), torch.nn.Conv3d(32, 32, 3, padding=1)
    with torch.inference_mode():
        t2 = timed(lambda: c2(x2), repeats)
        t3 = timed(lambda: c3(x3), repeats)
    f2 = 2 * 16 * 64 * 64 * 64 * 64 * 9
    f3 = 2 * 30 * 64 * 64 * 32 * 32 * 27
    return f2 / t2 / 1e9, f3 / t3 / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--variants", default="linear,flow,cvae,cgan")
    ap.add_argument("--config", action="append", default=[],
                    help="YAML whose model: section sets the network sizes (repeatable; sections are merged)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from v2v.config import from_dict, load_yaml
    from v2v.models.keyframe import KeyframeModelConfig, KeyframeSystem, linear_interpolation

    if args.threads:
        torch.set_num_threads(args.threads)
    model, flags = cpu_info()
    print(f"cpu: {model} | flags: {flags} | torch {torch.__version__} cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()} | threads {torch.get_num_threads()}")
    p2, p3 = conv_peak(args.repeats)
    peak = max(p2, p3)
    print(f"measured conv throughput: Conv2d 64->64 3x3 {p2:.1f} GFLOP/s, Conv3d 32->32 3x3x3 {p3:.1f} GFLOP/s")
    base = {}
    for path in args.config:
        base.update(load_yaml(path).get("model") or {})
    if args.config:
        print(f"model sizes from {', '.join(args.config)}: " + ", ".join(f"{k}={v}" for k, v in base.items()
                                                                        if k not in ("variant", "frames", "size")))
    torch.manual_seed(0)
    for size in args.sizes:
        a, b = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
        b = torch.roll(a, 3, dims=-1) * 0.9 + 0.1 * b  # a moving scene, so DIS has work to do
        for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
            if variant == "linear":
                fn = lambda a=a, b=b: linear_interpolation(a, b, args.frames)
            else:
                cfg = from_dict(KeyframeModelConfig, {**base, "variant": variant, "frames": args.frames,
                                                      "size": size}, "model")
                s = KeyframeSystem.from_config(cfg, inference=True).eval()
                gen = torch.Generator().manual_seed(0)
                fn = lambda s=s, gen=gen, a=a, b=b: s.generate(a, b, args.frames, generator=gen)
            with torch.inference_mode():
                with FlopCounterMode(display=False) as fc:
                    fn()
                sec = timed(fn, args.repeats, warmup=False)  # the FLOP-counting run warmed up
            gf = fc.get_total_flops() / 1e9
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"keyframe {variant} {size}x{size}x{args.frames}: {1 / sec:.3f} clips/s ({sec * 1000:.0f} ms/clip), "
                  f"{gf:.2f} GFLOP/clip, {gf / sec:.1f} GFLOP/s = {gf / sec / peak:.2f} x measured conv peak, "
                  f"peak RSS {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
