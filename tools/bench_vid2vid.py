#!/usr/bin/env python
"""Benchmark vid2vid generation: the v2v streaming generator vs a straightforward per-frame loop.

Same random weights, same label sequence, one run. Prints throughput of both paths, their ratio,
max |diff| of the outputs, GFLOP per frame and achieved GFLOP/s against this machine's measured
conv throughput, peak RSS, and optionally RSS flatness over a long streamed sequence and a bf16
run (speed-up and PSNR vs fp32).

    python tools/bench_vid2vid.py --arch 1024_g1 --size 128x256 --frames 5  # released 3-scale model, full width
    python tools/bench_vid2vid.py --arch 1024_g1 --size 512x1024 --frames 30 --stream-only   # RSS per frame
    python tools/bench_vid2vid.py --arch 1024_g1 --size 64x128 --precision bf16   # + bf16 PSNR vs fp32
    python tools/bench_vid2vid.py --size 256x512 --frames 4                 # one-scale street config (ngf 128)

The CPU model, its ISA flags and torch's CPU capability are printed first (``v2v.precision.cpu_line``).

Same as ``v2v bench vid2vid ...``.
"""
from __future__ import annotations

import argparse
import sys

from v2v.commands.vid2vid import add_bench_arguments, run_bench


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    return run_bench(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
