"""Keyframe interpolation on held-out puppets: a section of `v2v demo`.

Each held-out puppets video (the demo's ``test`` split, seed 1) is cut into clips of
``model.frames`` frames (shorter in ``--quick``); the first and last frame of each clip are the
keyframes, the frames in between are the ground truth. Methods: the flow-guided model (DIS flows
in both directions + the trained refinement network, the demo's model) and the trivial baseline,
linear interpolation (a cross-fade). Metrics as on the poster: the clip L2 distance
(:func:`v2v.models.keyframe.clip_l2`, mean +- std over clips), PSNR and SSIM over all frames.
The CVAE and CGAN variants are not shipped in the demo (see the section's note).
"""
from __future__ import annotations

import json
import os

from v2v.demo.sections import DemoModel, SectionOutput, record_note

MODEL = DemoModel(name="keyframe_puppets", system="keyframe", data="puppets",
                  summary="first + last frame -> the video in between (flow-guided keyframe interpolation)",
                  order=60)

#: extra `v2v train` overrides for `v2v demo --quick --train` (the quick puppets videos have 4 training
#: frames and 2 videos: a 12-frame clip and batch 4 do not fit). Read by v2v.demo.pipeline.
QUICK_TRAIN_OVERRIDES = ("model.frames=4", "train.batch_size=2")


def _clips(root: str, frames: int):
    """Held-out clips ``N,T,3,H,W`` in [0,1]: consecutive non-overlapping ``frames``-frame clips of
    every test video (one clip of the whole video when it is shorter)."""
    import torch

    from v2v.demo.tasks import read_puppet_video

    test = os.path.join(root, "test")
    out = []
    for name in sorted(os.listdir(test)):
        if not os.path.isdir(os.path.join(test, name)):
            continue
        v = read_puppet_video(os.path.join(test, name))["frames"].float()
        if v.max() > 1.5:
            v = v / 255.0
        t = min(frames, v.shape[0])
        out += [v[s : s + t] for s in range(0, v.shape[0] - t + 1, t)]
    return torch.stack(out)


def _metrics(pred, gt) -> dict:
    """Poster metrics over the in-between frames of ``B,T,3,H,W`` clips (keyframes excluded)."""
    from v2v.metrics.image import psnr, ssim
    from v2v.models.keyframe import clip_l2

    l2 = clip_l2(pred, gt)
    p, g = pred[:, 1:-1].flatten(0, 1).clamp(0, 1), gt[:, 1:-1].flatten(0, 1)
    ps = psnr(p, g)
    ps = ps.where(ps.isfinite(), ps.new_full((), 100.0))
    return {"l2": float(l2.mean()), "l2_std": float(l2.std()) if l2.numel() > 1 else 0.0,
            "psnr": float(ps.mean()), "ssim": float(ssim(p, g).mean())}


def _plots(rows):
    from v2v.demo.report import svg_line_plot

    curves = {"train G/l1 (in-between frames)": [(r["step"], r["G/l1"]) for r in rows if "G/l1" in r]}
    for k in ("eval/l2", "eval/l2_linear"):
        pts = [(r["step"], r[k]) for r in rows if k in r]
        if pts:
            curves[f"held-out {k}"] = pts
    losses = {k: [(r["step"], r[k]) for r in rows if k in r]
              for k in ("G", "G/l1", "G/l2", "G/smooth")}
    plots = []
    if any(curves.values()):
        plots.append(svg_line_plot({k: v for k, v in curves.items() if v}, "Keyframes: training loss and "
                                   "held-out clip L2", log_y=True))
    if any(losses.values()):
        plots.append(svg_line_plot({k: v for k, v in losses.items() if v}, "Keyframe training losses", log_y=True))
    return plots


def run(ctx, system, cfg, rows) -> SectionOutput:
    """Poster table (flow-guided vs linear) and side-by-side videos on held-out keyframe pairs."""
    import torch

    from v2v.demo.media import side_by_side, write_mp4_gif
    from v2v.demo.report import Section
    from v2v.demo.sections import beats
    from v2v.models.keyframe import linear_interpolation

    root = ctx.data[MODEL.data]
    frames = int(getattr(getattr(system, "cfg", None), "frames", 12))
    clips = _clips(root, frames)
    if ctx.quick:
        clips = clips[:2]
    n, T = clips.shape[0], clips.shape[1]
    first, last = clips[:, 0], clips[:, -1]
    model = system.to(ctx.device).eval()
    with torch.no_grad():
        flow = model.generate(first.to(ctx.device), last.to(ctx.device), T).cpu().clamp(0, 1)
    lin = linear_interpolation(first, last, T)
    table = [{"method": "flow-guided (DIS flows + refinement, v2v)", **_metrics(flow, clips)},
             {"method": "baseline: linear interpolation (cross-fade)", **_metrics(lin, clips)}]
    with open(os.path.join(root, "meta.json"), encoding="utf-8") as f:
        fps = json.load(f).get("fps", 15)
    vdir = ctx.video_dir("keyframe")
    scale = ctx.sizes.scale
    videos = []
    for i in range(min(n, 1 if ctx.quick else 3)):
        err = (flow[i] - clips[i]).abs().mean(1, keepdim=True).mul(3).clamp(0, 1).expand(-1, 3, -1, -1)
        frames_ = side_by_side([("first key", first[i]), ("last key", last[i]), ("linear", lin[i]),
                                ("flow-guided", flow[i]), ("ground truth", clips[i]), ("|error| x3", err)],
                               scale=scale)
        cap = f"held-out clip {i}: first | last keyframe | linear | flow-guided | ground truth | flow-guided error"
        videos.append((cap, write_mp4_gif(frames_, os.path.join(vdir, f"keyframe_clip{i}"), fps)))

    b = beats(table, "l2", higher_is_better=False)
    won = [k for k, v in b.items() if v]
    notes = [("The flow-guided model beats" if won else "Honest result: the flow-guided model does NOT beat")
             + f" linear interpolation on the lead metric, clip L2 (lower is better): {table[0]['l2']:.2f} "
             f"+- {table[0]['l2_std']:.2f} vs {table[1]['l2']:.2f} +- {table[1]['l2_std']:.2f}."]
    if not won:
        notes.append("Why: the puppets dance, and between two keyframes a limb's path is far from the straight line "
                     "Super SloMo's flow approximation assumes, so warped limbs land in the wrong place, which L2 "
                     "punishes more than the cross-fade's blur. docs/sections/keyframe.md measures the same narrow "
                     "margin on puppets (flow-guided wins there on 11 of 16 30-frame clips) and a clear win on "
                     "toycity and real driving clips; the refinement network here is tiny and trained for minutes.")
    for metric in ("psnr", "ssim"):
        better = table[1][metric] > table[0][metric]
        notes.append(f"On {metric.upper()} the {'linear baseline' if better else 'flow-guided model'} wins "
                     f"({max(table[0][metric], table[1][metric]):.3f} vs {min(table[0][metric], table[1][metric]):.3f}).")
    notes.append("CVAE and CGAN variants (configs/keyframe/cvae_*.yaml, cgan_*.yaml) are not shipped in the demo: "
                 "they did not fit the demo's training and size budget; see docs/sections/keyframe.md for them.")
    notes.append(record_note(ctx, MODEL.name, rows))
    sec = Section(
        title="Keyframes: first + last frame -> the video in between",
        description=(f"Held-out synthetic puppets (the demo's test split, never trained on) cut into {n} clips of "
                     f"{T} frames ({clips.shape[-2]}x{clips.shape[-1]}); only the first and last frame of each "
                     f"clip are given. Flow-guided: DIS optical flow between the keyframes in both directions, "
                     f"Super SloMo's intermediate flows, and a small refinement network that corrects flows, "
                     f"visibility and colour. Baseline: linear interpolation (cross-fade). Metrics (poster): clip "
                     f"L2 distance over all T x H x W x 3 values in [0,1] (mean and std over clips), and PSNR / "
                     f"SSIM over the {T - 2} in-between frames."),
        videos=[(c, ctx.rel(m), ctx.rel(g)) for c, (m, g) in videos],
        table=table, lower_is_better=("l2", "l2_std"), notes=notes, plots=_plots(rows), results_first=True,
        video_width=640)
    return SectionOutput(
        sections=[sec], table=table, lead_metric="l2", higher_is_better=False,
        videos=[{"caption": c, "mp4": ctx.rel(m), "gif": ctx.rel(g)} for c, (m, g) in videos],
        thumbnail=ctx.rel(videos[0][1][1]) if videos else None,
        extra={"frames_evaluated": f"{n} clips x {T} frames (frames 1..{T - 2} of each; 0 and {T - 1} are the "
                                   f"given keyframes)", "clips": n, "frames_per_clip": T, "beats_linear_on_l2": bool(won)})
