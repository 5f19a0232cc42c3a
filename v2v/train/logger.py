"""Run logging on rank 0: tqdm progress bar, TensorBoard, ``metrics.jsonl`` and sample grids.

- ``out_dir/metrics.jsonl``: one JSON object per logged step, ``{"step": n, "time": unix, <name>: value}``
  (training losses averaged over the log interval, ``lr/<group>``, ``it_per_s``; evaluation rows
  carry ``eval/<name>``). Lines are appended and flushed one at a time; on resume from step ``s``
  rows with ``step > s`` (written after that checkpoint by the killed run) are dropped first.
- ``out_dir/tb/``: TensorBoard scalars, image grids and (with moviepy) videos.
- ``out_dir/samples/step_XXXXXXXX_<name>.png``: image grids (``B,3,H,W`` -> one row per 4-8
  images); videos (``B,T,3,H,W``) become one row per sample, frames left to right, plus an
  animated GIF of grid frames when imageio is available.
"""

from __future__ import annotations

import json
import logging
import os
import time

import torch

from v2v.utils import atomic_path, atomic_write

__all__ = ["RunLogger", "truncate_jsonl"]

log = logging.getLogger("v2v.train")


def truncate_jsonl(path: str, max_step: int) -> None:
    """Drop rows with ``step > max_step`` (and any partial last line) from a metrics file."""
    if not os.path.isfile(path):
        return
    keep = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and int(row.get("step", 0)) <= max_step:
                keep.append(json.dumps(row))
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write("".join(k + "\n" for k in keep))


def _has_moviepy() -> bool:
    import importlib.util

    return importlib.util.find_spec("moviepy") is not None


class RunLogger:
    """Everything a training run writes besides checkpoints. Inactive (no-ops) when ``active`` is False."""

    def __init__(
        self,
        out_dir: str,
        total_steps: int,
        start_step: int = 0,
        active: bool = True,
        tensorboard: bool = True,
        progress: bool = True,
    ):
        self.out_dir, self.active = out_dir, active
        self.tb = None
        self.bar = None
        self.jsonl_path = os.path.join(out_dir, "metrics.jsonl")
        if not active:
            return
        os.makedirs(out_dir, exist_ok=True)
        truncate_jsonl(self.jsonl_path, start_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(out_dir, "tb"), purge_step=start_step or None)
            except Exception as exc:  # noqa: BLE001 - tensorboard missing or broken: keep training
                log.warning("TensorBoard disabled: %s", exc)
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total_steps,
                initial=start_step,
                unit="it",
                dynamic_ncols=True,
                smoothing=0.1,
                mininterval=0.5,
            )

    # -- scalars
    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.active:
            return
        row = {"step": int(step), "time": round(time.time(), 3)}
        row.update({k: float(v) for k, v in values.items()})
        with open(self.jsonl_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, float(v), step)

    def progress(self, n: int = 1, postfix: dict[str, float] | None = None) -> None:
        if self.bar is None:
            return
        if postfix:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
        self.bar.update(n)

    def info(self, msg: str) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.write(msg)
        else:
            log.info(msg)

    # -- samples
    def samples(self, step: int, images: dict[str, torch.Tensor]) -> list[str]:
        """Write grids for each sample tensor; returns the PNG paths written."""
        if not self.active:
            return []
        from torchvision.utils import make_grid, save_image

        paths = []
        sdir = os.path.join(self.out_dir, "samples")
        os.makedirs(sdir, exist_ok=True)
        for name, t in images.items():
            t = t.detach().float().cpu().clamp(0, 1)
            safe = name.replace("/", "_")
            if t.dim() == 4:  # B,C,H,W
                if t.shape[1] == 1:
                    t = t.expand(-1, 3, -1, -1)
                grid = make_grid(t, nrow=min(8, t.shape[0]), padding=1)
                if self.tb is not None:
                    self.tb.add_image(f"samples/{name}", grid, step)
            elif t.dim() == 5:  # B,T,C,H,W -> one row per sample
                b, tt = t.shape[:2]
                if t.shape[2] == 1:
                    t = t.expand(-1, -1, 3, -1, -1)
                grid = make_grid(t.reshape(b * tt, *t.shape[2:]), nrow=tt, padding=1)
                if self.tb is not None:
                    self.tb.add_image(f"samples/{name}_strip", grid, step)
                    if _has_moviepy():
                        self.tb.add_video(f"samples/{name}", t, step, fps=8)
                self._gif(os.path.join(sdir, f"step_{step:08d}_{safe}.gif"), t)
            else:
                continue
            p = os.path.join(sdir, f"step_{step:08d}_{safe}.png")
            with atomic_path(p) as tmp:
                save_image(grid, tmp, format="png")
            paths.append(p)
        if self.tb is not None:
            self.tb.flush()
        return paths

    @staticmethod
    def _gif(path: str, video: torch.Tensor) -> None:
        try:
            import imageio.v3 as iio
        except ImportError:
            return
        from torchvision.utils import make_grid

        frames = []
        for i in range(video.shape[1]):
            g = make_grid(video[:, i], nrow=min(8, video.shape[0]), padding=1)
            frames.append((g.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8"))
        try:
            with atomic_path(path) as tmp:
                iio.imwrite(tmp, frames, extension=".gif", duration=125, loop=0)
        except Exception as exc:  # noqa: BLE001 - an optional preview must never stop training
            log.warning("could not write %s: %s", path, exc)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
            self.tb = None
