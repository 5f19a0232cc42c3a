"""Helpers shared by the benchmarks (``tools/bench_*.py``, ``v2v bench``).

Every benchmark prints the machine it ran on (:func:`v2v.precision.cpu_line`: CPU model, ISA
flags, torch's CPU capability) and reports achieved GFLOP/s against :func:`conv_gflops`, the
fp32 convolution throughput this machine reaches in the same run.
"""
from __future__ import annotations

import time

from v2v.precision import cpu_line

__all__ = ["conv_gflops", "cpu_line"]


def conv_gflops(channels: int = 256, hw: tuple[int, int] = (64, 128), seconds: float = 2.0,
                channels_last: bool = False) -> float:
    """Achievable fp32 throughput of a 3x3 conv (``channels`` -> ``channels`` at ``hw``), in GFLOP
    per CPU-second (process time, so other jobs on the machine count less).

    Example:
        >>> conv_gflops(channels=8, hw=(8, 8), seconds=0.01) > 0
        True
    """
    import torch
    import torch.nn.functional as F

    x, w = torch.randn(1, channels, *hw), torch.randn(channels, channels, 3, 3)
    if channels_last:
        x, w = x.to(memory_format=torch.channels_last), w.to(memory_format=torch.channels_last)
    F.conv2d(x, w, padding=1)
    reps, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds or reps < 3:
        F.conv2d(x, w, padding=1)
        reps += 1
    return 2.0 * channels * channels * 9 * hw[0] * hw[1] / ((time.process_time() - t0) / reps) / 1e9
