#!/usr/bin/env python
"""Benchmark vid2vid generation: the v2v streaming generator vs a straightforward per-frame loop.

Same random weights, same label sequence, one run. Prints throughput of both paths, their ratio,
max |diff| of the outputs, GFLOP per frame and achieved GFLOP/s against this machine's measured
conv throughput, peak RSS, and optionally RSS flatness over a long streamed sequence and a bf16
run (speed-up and PSNR vs fp32).

    python tools/bench_vid2vid.py --size 256x512 --frames 4                 # street config (ngf 128)
    python tools/bench_vid2vid.py --size 256x512 --ngf 32 --frames 8 --rss-frames 300 --precision bf16

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
