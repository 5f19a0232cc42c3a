"""Compute precision that never backfires: a reduced precision only where the device runs it natively.

One call for every command that offers ``--precision auto|fp32|bf16|fp16``::

    from v2v.precision import resolve_precision, autocast_dtype
    mode = resolve_precision(args.precision, args.device)   # before loading anything
    dtype = autocast_dtype(mode)                             # None for fp32, else torch.bfloat16/float16

:func:`resolve_precision` raises a one-line :class:`V2VError` naming the reason and the
alternative when the mode would be emulated (e.g. bf16 on an x86 CPU without AVX512-BF16/AMX runs
hundreds of times slower than fp32), and ``auto`` picks the fastest native mode. For CPUs it
reads ``/proc/cpuinfo`` and does not import torch, so the refusal takes milliseconds.

Native support:

- CPU bf16: ``avx512_bf16`` or ``amx_bf16`` (x86), ``bf16`` (aarch64, ARMv8.6); fp16: ``avx512_fp16``
  or ``amx_fp16`` (x86). Without them oneDNN emulates the conversion and convolutions.
- CUDA bf16: compute capability >= 8.0 (Ampere); fp16: >= 7.0 (tensor cores).
- MPS: fp16; bf16 is refused (not every macOS version runs it natively).
- ``auto``: CUDA bf16 (>= 8.0) or fp16 (>= 7.0); CPU bf16 with AMX/AVX512-BF16; MPS and
  everything else fp32.
"""
from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache

from v2v.errors import V2VError

__all__ = ["MODES", "autocast_dtype", "cpu_info", "cpu_line", "native_modes", "resolve_precision"]

MODES = ("auto", "fp32", "bf16", "fp16")
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16")
_CPU_BF16 = ("avx512_bf16", "amx_bf16")
_CPU_FP16 = ("avx512_fp16", "amx_fp16")


@lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset]:
    """(CPU model name, ISA flags) from ``/proc/cpuinfo`` (empty flags where it does not exist)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model") and model in ("", platform.processor(), platform.machine()):
                    model = val.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    return model, frozenset(flags)


def cpu_line(with_torch: bool = True) -> str:
    """``CPU <model>, <n> cores; avx2 yes, avx512f no, ...; torch CPU capability AVX2``."""
    model, flags = cpu_info()
    isa = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ISA_FLAGS)
    line = f"CPU {model}, {os.cpu_count()} logical cores; {isa}"
    if with_torch:
        import torch

        line += f"; torch {torch.__version__} CPU capability {torch.backends.cpu.get_cpu_capability()}"
    return line


def _device_kind(device) -> tuple[str, object]:
    """('cpu' | 'cuda' | 'mps', torch device or None), importing torch only when a GPU may exist."""
    name = str(device or "auto")
    if name == "cpu":
        return "cpu", None
    if name == "auto" and not (os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/kfd")
                               or sys.platform == "darwin"):
        return "cpu", None
    from v2v.device import resolve_device

    dev = resolve_device(name)
    return dev.type, dev


def native_modes(device="auto") -> dict[str, str | None]:
    """``{mode: None if native on ``device`` else why not}`` for fp32, bf16, fp16."""
    kind, dev = _device_kind(device)
    out: dict[str, str | None] = {"fp32": None}
    if kind == "cuda":
        import torch

        cap = torch.cuda.get_device_capability(dev)
        gpu = f"{torch.cuda.get_device_name(dev)} (compute capability {cap[0]}.{cap[1]})"
        out["bf16"] = None if cap >= (8, 0) else f"{gpu} has no native bf16 (needs >= 8.0)"
        out["fp16"] = None if cap >= (7, 0) else f"{gpu} has no fp16 tensor cores (needs >= 7.0)"
    elif kind == "mps":
        out["bf16"] = "bf16 is not native on every Apple GPU / macOS version"
        out["fp16"] = None
    elif kind == "cpu":
        model, flags = cpu_info()
        arm = platform.machine().lower() in ("aarch64", "arm64")
        bf16 = any(f in flags for f in _CPU_BF16) or (arm and "bf16" in flags)
        fp16 = any(f in flags for f in _CPU_FP16)
        out["bf16"] = None if bf16 else (f"this CPU ({model}) has no native bf16 (no {'/'.join(_CPU_BF16)} "
                                         f"flag): bf16 would be emulated, many times slower than fp32")
        out["fp16"] = None if fp16 else (f"this CPU ({model}) has no native fp16 (no {'/'.join(_CPU_FP16)} "
                                         f"flag): fp16 would be emulated, many times slower than fp32")
    else:
        out["bf16"] = out["fp16"] = f"no reduced-precision support known for device type '{kind}'"
    return out


def resolve_precision(requested: str = "auto", device="auto") -> str:
    """``requested`` (auto/fp32/bf16/fp16) -> the mode to run (fp32/bf16/fp16) on ``device``.

    Args:
        requested: the user's ``--precision``.
        device: ``--device`` (cpu, cuda, cuda:N, mps, auto).

    Returns:
        ``"fp32"``, ``"bf16"`` or ``"fp16"``; ``auto`` gives the fastest native one.

    Raises:
        V2VError: one line, when the mode would be emulated on this device (what to use instead).

    Example:
        >>> resolve_precision("fp32", "cpu")
        'fp32'
    """
    if requested not in MODES:
        raise V2VError(f"--precision must be one of {', '.join(MODES)}, got {requested!r}")
    if requested == "fp32":
        return "fp32"
    native = native_modes(device)
    if requested == "auto":
        kind, _ = _device_kind(device)
        order = ("bf16", "fp16") if kind == "cuda" else ("bf16",) if kind == "cpu" else ()
        return next((m for m in order if native.get(m) is None), "fp32")
    why = native.get(requested)
    if why is not None:
        ok = [m for m in ("bf16", "fp16") if native.get(m) is None]
        alt = "fp32" + (f" or {'/'.join(ok)}" if ok else "") + " (auto picks the fastest native mode)"
        raise V2VError(f"--precision {requested} refused: {why}; use --precision {alt}")
    return requested


def autocast_dtype(mode: str):
    """``None`` for fp32, else the torch dtype for ``torch.autocast``."""
    if mode == "fp32":
        return None
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]
