"""The two demo tasks, evaluated against trivial baselines on held-out synthetic clips.

- :func:`run_fomm_task`: FOMM animates the first frame of each held-out puppets video with that
  same video as the driving video (self-reconstruction, the FOMM paper's evaluation protocol), so
  the driving video is the ground truth. Cross-identity animations are made for show only.
- :func:`run_vid2vid_task`: vid2vid converts each held-out toycity label-map video into footage
  in the official test mode: the first ``n_frames_G - 1`` real frames are given, every later
  frame is generated.

Metrics (per video, then averaged): PSNR and SSIM (:mod:`v2v.metrics.image`, SSIM through
kornia) against the ground-truth frames, on the *predicted* frames only (frames a method was
given are excluded for every method), and the warping error (:func:`v2v.metrics.temporal.warp_error`)
of the whole output clip with the dataset's ground-truth backward flow ``flowprev`` and its
occlusion mask: how well the output follows the true motion (the ground truth's own value is
the floor).

Video tensors are ``T,3,H,W`` float in [0,1]; label maps ``T,H,W`` integer ids.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "class_mean_colors",
    "read_puppet_video",
    "read_toycity_video",
    "run_fomm_task",
    "run_vid2vid_task",
    "video_metrics",
]


# ----------------------------------------------------------------------------- readers


def _rgb_folder(folder: Path) -> torch.Tensor:
    from v2v.data.image import read_image, to_tensor
    from v2v.data.video import list_frames

    return torch.stack([to_tensor(read_image(f)) for f in list_frames(folder)])


def _flow_folder(flow_dir: Path, occ_dir: Path, T: int):
    """``T-1,2,H,W`` backward flows (t = 1..T-1) and ``T-1,1,H,W`` occlusion masks (1 = invalid)."""
    from v2v.data.datasets import read_flo
    from v2v.data.image import read_label_map

    flows, occs = [], []
    for t in range(1, T):
        name = f"frame_{t:05d}"
        flows.append(torch.from_numpy(np.ascontiguousarray(read_flo(flow_dir / f"{name}.flo"))).permute(2, 0, 1))
        occs.append(torch.from_numpy((read_label_map(occ_dir / f"{name}.png") > 127).astype(np.float32))[None])
    return torch.stack(flows).float(), torch.stack(occs)


def read_puppet_video(folder: str | os.PathLike) -> dict:
    """One ``v2v data synth puppets`` video folder -> {"frames" T,3,H,W, "flowprev", "occprev"}."""
    folder = Path(folder)
    frames = _rgb_folder(folder / "frames")
    flow, occ = _flow_folder(folder / "flowprev", folder / "occprev", frames.shape[0])
    return {"name": folder.name, "frames": frames, "flowprev": flow, "occprev": occ}


def read_toycity_video(root: str | os.PathLike, split: str, seq: str) -> dict:
    """One toycity sequence -> {"labels" T,H,W, "instances" T,H,W, "frames" T,3,H,W, flowprev, occprev}."""
    from v2v.data.image import read_label_map
    from v2v.data.video import list_frames

    root = Path(root)
    labels = torch.stack([torch.from_numpy(read_label_map(f)).long()
                          for f in list_frames(root / f"{split}_A" / seq)])
    inst = torch.stack([torch.from_numpy(read_label_map(f)).long()
                        for f in list_frames(root / f"{split}_inst" / seq)])
    frames = _rgb_folder(root / f"{split}_B" / seq)
    flow, occ = _flow_folder(root / f"{split}_flowprev" / seq, root / f"{split}_occprev" / seq, frames.shape[0])
    return {"name": seq, "labels": labels, "instances": inst, "frames": frames, "flowprev": flow, "occprev": occ}


def class_mean_colors(root: str | os.PathLike, split: str, label_nc: int) -> torch.Tensor:
    """Mean RGB (in [0,1]) of every class over all frames of ``split``: ``label_nc,3`` (classes
    never seen get mid-grey). The per-class-mean-colour baseline paints label maps with it."""
    from v2v.data.image import read_image, read_label_map
    from v2v.data.video import list_frames

    root = Path(root)
    sums = np.zeros((label_nc, 3), np.float64)
    counts = np.zeros(label_nc, np.int64)
    for seq in sorted(p.name for p in (root / f"{split}_A").iterdir() if p.is_dir()):
        for fa, fb in zip(list_frames(root / f"{split}_A" / seq), list_frames(root / f"{split}_B" / seq)):
            lab = read_label_map(fa).reshape(-1)
            rgb = read_image(fb).reshape(-1, 3).astype(np.float64) / 255.0
            counts += np.bincount(lab, minlength=label_nc)[:label_nc]
            for c in range(3):
                sums[:, c] += np.bincount(lab, weights=rgb[:, c], minlength=label_nc)[:label_nc]
    means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 0.5)
    return torch.from_numpy(means).float()


# ----------------------------------------------------------------------------- metrics


def video_metrics(pred: torch.Tensor, gt: torch.Tensor, flowprev: torch.Tensor, occprev: torch.Tensor,
                  first_eval: int) -> dict[str, float]:
    """PSNR / SSIM of ``pred`` vs ``gt`` over frames ``first_eval..T-1`` (mean of per-frame
    values) and the warping error of the whole ``pred`` clip with the ground-truth flow.
    ``pred``, ``gt``: ``T,3,H,W`` in [0,1]; ``flowprev`` ``T-1,2,H,W``; ``occprev`` ``T-1,1,H,W``."""
    from v2v.metrics.image import psnr, ssim
    from v2v.metrics.temporal import warp_error

    p, g = pred[first_eval:].float().clamp(0, 1), gt[first_eval:].float()
    ps = psnr(p, g)
    ps = torch.where(torch.isfinite(ps), ps, torch.full_like(ps, 100.0))  # identical frame: cap at 100 dB
    return {
        "psnr": float(ps.mean()),
        "ssim": float(ssim(p, g).mean()),
        "warp_error": float(warp_error(pred[None].float().clamp(0, 1), flowprev[None], occprev[None])[0]),
    }


def _mean_rows(per_video: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for method, vals in per_video.items():
        row = {"method": method}
        for k in vals[0]:
            row[k] = float(np.mean([v[k] for v in vals]))
        rows.append(row)
    return rows


def _gt_row(videos: list[dict]) -> dict:
    from v2v.metrics.temporal import warp_error

    we = [float(warp_error(v["frames"][None], v["flowprev"][None], v["occprev"][None])[0]) for v in videos]
    return {"method": "ground truth (floor)", "psnr": float("inf"), "ssim": 1.0, "warp_error": float(np.mean(we))}


# ----------------------------------------------------------------------------- FOMM


def run_fomm_task(system, videos: list[dict], out_dir: str, fps: float, progress: bool = True,
                  cross: bool = True, scale: int = 2) -> dict:
    """Animate each held-out video's first frame with the video itself (relative mode: the
    official demo's default) and compare with copy-first-frame. Writes side-by-side videos into
    ``out_dir/videos``; returns {"table", "per_video", "videos", "frames_evaluated"}."""
    from tqdm import tqdm

    from v2v.demo.media import side_by_side, write_mp4_gif
    from v2v.models.fomm import Animator

    dev = next(system.parameters()).device
    per = {"FOMM (v2v, shipped/trained checkpoint)": [], "baseline: copy first frame": []}
    vids = []
    preds = {}
    bar = tqdm(total=len(videos) + (len(videos) if cross and len(videos) > 1 else 0), desc="fomm animate",
               unit="video", disable=not progress)
    for v in videos:
        frames = v["frames"]
        T = frames.shape[0]
        anim = Animator(system.kp_detector, system.generator, frames[:1].to(dev), mode="relative")
        pred = torch.cat([anim(frames[i:i + 8].to(dev)).cpu() for i in range(0, T, 8)])
        preds[v["name"]] = pred
        copy = frames[:1].expand(T, -1, -1, -1)
        per["FOMM (v2v, shipped/trained checkpoint)"].append(
            video_metrics(pred, frames, v["flowprev"], v["occprev"], 1))
        per["baseline: copy first frame"].append(video_metrics(copy, frames, v["flowprev"], v["occprev"], 1))
        sbs = side_by_side([("source (frame 0)", frames[0]), ("driving = ground truth", frames),
                            ("FOMM output", pred), ("|error| x2", ((pred - frames).abs() * 2).clamp(0, 1))],
                           scale=scale)
        mp4, gif = write_mp4_gif(sbs, os.path.join(out_dir, "videos", f"fomm_{v['name']}"), fps)
        vids.append((f"puppets {v['name']}: source | driving (= ground truth) | FOMM | error", mp4, gif))
        bar.update(1)
    if cross and len(videos) > 1:
        for i, v in enumerate(videos):
            src = videos[(i + 1) % len(videos)]
            frames = v["frames"]
            anim = Animator(system.kp_detector, system.generator, src["frames"][:1].to(dev), mode="relative")
            pred = torch.cat([anim(frames[j:j + 8].to(dev)).cpu() for j in range(0, frames.shape[0], 8)])
            sbs = side_by_side([("source (other puppet)", src["frames"][0]), ("driving", frames),
                                ("FOMM output", pred)], scale=scale)
            mp4, gif = write_mp4_gif(sbs, os.path.join(out_dir, "videos", f"fomm_cross_{src['name']}_by_{v['name']}"),
                                     fps)
            vids.append((f"cross-identity (no ground truth): {src['name']} driven by {v['name']}", mp4, gif))
            bar.update(1)
    bar.close()
    table = _mean_rows(per) + [_gt_row(videos)]
    return {"table": table, "per_video": {m: dict(zip([v["name"] for v in videos], vals)) for m, vals in per.items()},
            "videos": vids, "frames_evaluated": "frames 1..T-1 (frame 0 is the source image)"}


# ----------------------------------------------------------------------------- vid2vid


def run_vid2vid_task(system, videos: list[dict], class_colors: torch.Tensor, palette, out_dir: str, fps: float,
                     progress: bool = True, scale: int = 2) -> dict:
    """Generate each held-out toycity clip from its label maps, official test mode: the first
    ``n_frames_G - 1`` real frames seed the generator (``--use_real_img``), the rest are generated
    frame by frame (:class:`v2v.models.vid2vid.Vid2VidStream`, per-frame BN statistics as the
    official test.py). Baselines: copy the first frame, copy the last given real frame, and the
    per-class mean colour of the training split. Returns like :func:`run_fomm_task`."""
    from tqdm import tqdm

    from v2v.demo.media import label_palette_video, side_by_side, write_mp4_gif
    from v2v.models.vid2vid import Vid2VidStream

    cfg = system.cfg
    G = system.netG
    dev = next(G.parameters()).device
    k = cfg.n_frames_G - 1
    names = ["vid2vid (v2v, shipped/trained checkpoint)", "baseline: copy first frame",
             f"baseline: copy last given frame (frame {k - 1})", "baseline: per-class mean colour (train split)"]
    per = {n: [] for n in names}
    vids = []
    bar = tqdm(total=len(videos), desc="vid2vid generate", unit="video", disable=not progress)
    for v in videos:
        frames, labels, inst = v["frames"], v["labels"], v["instances"]
        T = frames.shape[0]
        stream = Vid2VidStream(G, cfg, first_frames=[frames[i:i + 1].to(dev) for i in range(k)], norm_stats="batch")
        pred = torch.cat([stream.step(labels[t:t + 1].to(dev),
                                      inst[t:t + 1].to(dev) if cfg.use_instance else None).cpu() for t in range(T)])
        copy0 = frames[:1].expand(T, -1, -1, -1).clone()
        copyk = torch.cat([frames[:k], frames[k - 1:k].expand(T - k, -1, -1, -1)])
        mean = class_colors[labels].permute(0, 3, 1, 2).contiguous()
        mean[:k] = frames[:k]  # every method is given the same real frames (excluded from PSNR/SSIM)
        for n, p in zip(names, (pred, copy0, copyk, mean)):
            per[n].append(video_metrics(p, frames, v["flowprev"], v["occprev"], k))
        sbs = side_by_side([("label map (input)", label_palette_video(labels, palette)), ("vid2vid output", pred),
                            ("ground truth", frames), ("class-mean baseline", mean)], scale=scale)
        mp4, gif = write_mp4_gif(sbs, os.path.join(out_dir, "videos", f"vid2vid_{v['name']}"), fps)
        vids.append((f"toycity {v['name']}: labels | vid2vid | ground truth | per-class mean colour", mp4, gif))
        bar.update(1)
    bar.close()
    table = _mean_rows(per) + [_gt_row(videos)]
    return {"table": table, "per_video": {m: dict(zip([v["name"] for v in videos], vals)) for m, vals in per.items()},
            "videos": vids, "frames_evaluated": f"frames {k}..T-1 (frames 0..{k - 1} are given real frames)"}


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Rows of a trainer ``metrics.jsonl`` (unreadable lines skipped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows
