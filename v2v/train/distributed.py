"""Data-parallel training across processes (``torchrun``), without wrapping the system in DDP.

Why not ``DistributedDataParallel``: a GAN step backprops two losses through overlapping graphs
(G's adversarial term goes through D) with ``backward(inputs=group_params)`` and steps two
optimizers in one forward. DDP's reducer hooks fire per backward on *all* parameters that
require grad and expect exactly one backward per forward, which breaks or needs
``find_unused_parameters`` tricks here. Instead, after each group's backward the trainer
averages that group's gradients with one flattened ``all_reduce`` (:func:`average_gradients`).
The result is the same as DDP's (mean of per-rank gradients) and works for any number of
groups, losses and backward calls. Parameters are broadcast from rank 0 at start.

Not synchronized: BatchNorm running statistics (each rank keeps its own; rank 0's are saved).
Use SyncBatchNorm inside a system if that matters.

Launch: ``torchrun --nproc_per_node=K -m v2v train --config ...`` (one machine), or on each of
N machines ``torchrun --nnodes=N --node_rank=i --master_addr=HOST --master_port=29500
--nproc_per_node=K -m v2v train ...``. Backend: nccl on CUDA, gloo on CPU.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_gather_object",
    "all_reduce_mean",
    "average_gradients",
    "barrier",
    "broadcast_module",
    "init_distributed",
    "shutdown",
]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device | None = None) -> tuple[DistInfo, torch.device | None]:
    """Initialise the process group from torchrun's env vars (``RANK``, ``WORLD_SIZE``, ...).

    Returns (info, device): with ``WORLD_SIZE`` > 1 the process group is started (gloo for CPU,
    nccl for CUDA) and a CUDA device becomes ``cuda:LOCAL_RANK``. Without the env vars it is a
    no-op (single process).
    """
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    if ws <= 1:
        return DistInfo(), device
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is not None and device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        kw = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30), **kw)
    return DistInfo(rank=rank, world_size=ws, local_rank=local, enabled=True), device


def _flat_reduce(tensors: list[torch.Tensor], world_size: int, op=dist.ReduceOp.SUM) -> None:
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat, op=op)
    flat.div_(world_size)
    off = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[off : off + n].view_as(t))
        off += n


def average_gradients(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """Replace each parameter's ``.grad`` by its mean over ranks.

    A parameter with no grad on every rank keeps ``grad=None`` (the optimizer skips it, as in a
    single process); one with a grad on some ranks only counts zero on the others.
    """
    if not info.enabled or not params:
        return
    dev = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=dev)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    grads = []
    for p, h in zip(params, has.tolist()):
        if not h:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    for ts in by_dtype.values():
        _flat_reduce(ts, info.world_size)


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to all ranks."""
    if not info.enabled:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def all_reduce_mean(values: dict[str, torch.Tensor], info: DistInfo) -> dict[str, torch.Tensor]:
    """Mean over ranks of a dict of scalar tensors (same keys on all ranks)."""
    if not info.enabled or not values:
        return values
    keys = list(values)  # same order on every rank (train_step builds it deterministically)
    flat = torch.stack([values[k].detach().float().reshape(()) for k in keys])
    dist.all_reduce(flat)
    flat /= info.world_size
    return {k: flat[i] for i, k in enumerate(keys)}


def all_gather_object(obj, info: DistInfo) -> list:
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
