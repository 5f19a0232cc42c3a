"""Benchmark of the trainer's overhead: v2v.train.Trainer vs a bare G/D loop on the toy system.

Both paths train the same toy system from the same initial weights, on the same data order,
with the same Adam settings. The bare loop collates items by hand; the Trainer adds per-item
RNG seeding, logging every 10 steps, and a final sample, evaluation and checkpoint. Their final
weights must match bit for bit.

Usage: python tools/bench_train.py [--steps 200] [--batch 4] [--size 16] [--width 16] [--threads 1]
Prints e.g. ``toy train 16x16 B=4 200 steps cpu: trainer 25.1 it/s, bare loop 31.0 it/s, ratio 0.81x, max|diff| 0``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from torch.utils.data import default_collate

    from v2v.models.toy import ToyDataConfig, ToyModelConfig, ToySystem
    from v2v.train.config import TrainConfig
    from v2v.train.data import ResumableBatchSampler
    from v2v.train.trainer import Trainer

    mcfg = ToyModelConfig(width=a.width, d_width=a.width)
    dcfg = ToyDataConfig(size=a.size, num_train=64, augment=False)
    ds = ToySystem.build_dataset(dcfg, "train", mcfg)
    test = ToySystem.build_dataset(dcfg, "test", mcfg)
    dev = torch.device(a.device)

    # bare loop
    torch.manual_seed(0)
    bare = ToySystem(mcfg).to(dev)
    groups = bare.optim_groups()
    opts = {g: torch.optim.Adam(ps, lr=2e-3, betas=(0.5, 0.999)) for g, ps in groups.items()}
    it = iter(ResumableBatchSampler(len(ds), a.batch, seed=0))
    t0 = time.perf_counter()
    for step in range(a.steps):
        batch = default_collate([ds[i] for i, _ in next(it)])
        batch = {k: v.to(dev) for k, v in batch.items()}
        out = bare.train_step(batch, step)
        for n, (g, ps) in enumerate(groups.items()):
            opts[g].zero_grad(set_to_none=True)
            out[g].backward(inputs=ps, retain_graph=n < len(groups) - 1)
            opts[g].step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t_bare = time.perf_counter() - t0

    # trainer
    torch.manual_seed(0)
    system = ToySystem(mcfg)
    cfg = TrainConfig(steps=a.steps, batch_size=a.batch, lr=2e-3, log_every=10, sample_every=0, eval_every=0,
                      ckpt_every=0, eval_batches=1, seed=0)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(system, cfg, tmp, dev, ds, test, progress=False)
        t0 = time.perf_counter()
        tr.fit()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t_tr = time.perf_counter() - t0

    diff = max((system.state_dict()[k] - v).abs().max().item() for k, v in bare.state_dict().items())
    print(
        f"toy train {a.size}x{a.size} B={a.batch} {a.steps} steps {a.device} ({a.threads} thread(s)): "
        f"trainer {a.steps / t_tr:.1f} it/s, bare loop {a.steps / t_bare:.1f} it/s, "
        f"ratio {t_bare / t_tr:.2f}x, max|diff| {diff:.3g}"
    )


if __name__ == "__main__":
    main()
