"""`v2v eval`: compare predicted videos with ground truth, frame by frame.

    v2v eval --pred OUT.mp4 --gt GT_FRAMES/ [--flow-prev FLOWPREV_DIR] \
             [--metrics psnr,ssim,lpips,warp,fid] [--json OUT.json]
    v2v eval keyframe --config CFG [--cvae CKPT] [--cgan CKPT] [--flow CKPT]   (see v2v.commands.keyframe)

``--pred`` / ``--gt`` are videos (a file or a frame folder, see :mod:`v2v.data.video`), or two
folders *of* videos (sub-folders of frames and/or video files), paired by name. Frames are
streamed in lock step (constant memory). Metrics:

* ``psnr``, ``ssim`` (and ``lpips``, needs local weights) per frame, averaged per video;
* ``warp``: warping error of the *prediction* against the ground-truth backward flow to the
  previous frame, :func:`v2v.metrics.temporal.warp_error` (``--flow-prev`` folder of ``.flo``
  files for frames 1..T-1, e.g. toycity's ``train_flowprev/seq0000``; occlusion masks are taken
  from ``--occ-prev`` or, when present, from the sibling folder with ``flowprev`` replaced by
  ``occprev``). ``warp_gt`` reports the same error for the ground truth itself (the floor);
* ``fid``: FID between all predicted and all ground-truth frames (pooled over videos; noisy and
  biased upwards for fewer than a few thousand frames);
* ``akd`` / ``mkr``: with ``--kp-pred`` and ``--kp-gt`` (folders of OpenPose JSON, one file per
  frame in natural order, e.g. pose detections run on the generated frames vs the driving
  keypoints): average keypoint distance in pixels over body keypoints detected in both
  (confidence > 0), and the missing-keypoint rate (detected in gt, not in pred).
* ``acd``: Average Content Distance of each predicted video (MoCoGAN / MoCoGAN-HD): mean pairwise
  L2 distance between frame embeddings (colour-histogram embedding, :mod:`v2v.metrics.acd`).
"""
from __future__ import annotations

import os
from pathlib import Path

METRICS = ("psnr", "ssim", "lpips", "warp", "fid", "akd", "mkr", "acd")


def register(cli) -> None:
    p = cli.command("eval", help="evaluate predicted videos against ground truth (PSNR, SSIM, LPIPS, warp error, FID)")
    p.add_argument("--pred", help="predicted video (file or frame folder) or a folder of videos (required)")
    p.add_argument("--gt", help="ground-truth video or folder of videos, paired by name (required)")
    p.add_argument("--flow-prev", default=None,
                   help="folder of .flo backward flows to the previous frame (frames 1..T-1); for a folder of "
                        "videos, a folder with one such sub-folder per video")
    p.add_argument("--occ-prev", default=None, help="occlusion masks for --flow-prev (PNG, 255 = invalid)")
    p.add_argument("--kp-pred", default=None,
                   help="folder of OpenPose JSON for the predicted frames (or per-video sub-folders)")
    p.add_argument("--kp-gt", default=None, help="folder of OpenPose JSON ground-truth keypoints (same layout)")
    p.add_argument("--metrics", default=None,
                   help=f"comma list from {','.join(METRICS)} (default: psnr,ssim, plus warp with --flow-prev, "
                        "akd,mkr with --kp-pred/--kp-gt)")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.add_argument("--max-frames", type=int, default=None, help="evaluate at most this many frames per video")
    p.add_argument("--resize", action="store_true", help="resize predicted frames to the ground-truth size")
    p.add_argument("--lpips-net", default="alex", choices=("alex", "vgg"), help="LPIPS backbone (default alex)")
    p.add_argument("--lpips-backbone", default=None, help="LPIPS backbone weights file (torchvision alexnet/vgg16)")
    p.add_argument("--lpips-heads", default=None, help="LPIPS v0.1 linear heads file (alex.pth / vgg.pth)")
    p.set_defaults(func=run_eval)
    forms = p.add_subparsers(dest="eval_form", metavar="FORM", help="keyframe: the keyframe-interpolation table")
    from v2v.commands.keyframe import add_eval_arguments
    from v2v.commands.keyframe import run_eval as run_eval_keyframe

    k = forms.add_parser("keyframe", help="L2 / PSNR / SSIM of linear, CVAE, CGAN, flow-guided interpolation",
                         description="keyframe interpolation table over held-out clips (v2v.commands.keyframe)")
    add_eval_arguments(k)
    k.set_defaults(func=run_eval_keyframe)


# ------------------------------------------------------------------------------ helpers
def _is_single_video(path: Path) -> bool:
    from v2v.data.image import IMAGE_EXTENSIONS
    from v2v.data.video import is_video_path, list_frames

    if path.is_file():
        return is_video_path(path) or path.suffix.lower() in IMAGE_EXTENSIONS
    return path.is_dir() and bool(list_frames(path))


def _collection(path: Path) -> dict[str, Path]:
    from v2v.data.video import is_video_path, list_frames, natural_key

    out = {}
    for p in sorted(path.iterdir(), key=lambda q: natural_key(q.name)):
        if p.name.startswith("."):
            continue
        if p.is_dir() and list_frames(p):
            out[p.name] = p
        elif p.is_dir() and (p / "frames").is_dir() and list_frames(p / "frames"):
            out[p.name] = p / "frames"  # puppets layout: <video>/frames
        elif p.is_file() and is_video_path(p):
            out[p.stem] = p
    return out


def _pairs(pred: Path, gt: Path, flow_prev: Path | None, occ_prev: Path | None):
    from v2v.errors import V2VError

    for p, what in ((pred, "--pred"), (gt, "--gt")):
        if not p.exists():
            raise V2VError(f"{what} {p}: not found")
    if _is_single_video(gt):
        if not _is_single_video(pred):
            raise V2VError(f"--pred {pred}: expected a video or frame folder like --gt {gt}")
        name = gt.name if gt.is_dir() else gt.stem
        if gt.is_dir() and name == "frames":  # puppets layout: <video>/frames
            name = gt.resolve().parent.name
        return [(name, pred, gt, flow_prev, occ_prev)]
    gts, preds = _collection(gt), _collection(pred)
    if not gts:
        raise V2VError(f"--gt {gt}: no videos or frame folders inside")
    missing = [k for k in gts if k not in preds]
    if missing:
        raise V2VError(f"--pred {pred}: no prediction for ground-truth video '{missing[0]}' "
                       f"({len(missing)} of {len(gts)} missing; predictions are paired by name)")
    out = []
    for name, g in gts.items():
        fp = op = None
        if flow_prev is not None:
            fp = flow_prev / name
            if (fp / "flowprev").is_dir() and not any(fp.glob("*.flo")):
                fp = fp / "flowprev"  # puppets layout: <video>/flowprev
            if not fp.is_dir():
                raise V2VError(f"--flow-prev {flow_prev}: no sub-folder for video '{name}'")
            op = occ_prev / name if occ_prev is not None else None
        out.append((name, preds[name], g, fp, op))
    return out


def _auto_occ(flow_dir: Path) -> Path | None:
    s = str(flow_dir)
    if "flowprev" in s:
        cand = Path(s[::-1].replace("verpwolf", "verpcco", 1)[::-1])  # last occurrence
        if cand.is_dir():
            return cand
    return None


def _flow_files(flow_dir: Path) -> list[Path]:
    from v2v.data.video import natural_key

    return sorted((p for p in flow_dir.iterdir() if p.suffix == ".flo"), key=lambda p: natural_key(p.name))


def _occ_files(occ_dir: Path) -> list[Path]:
    from v2v.data.video import list_frames

    return list_frames(occ_dir)


# ------------------------------------------------------------------------------ run
def run_eval(args) -> int:
    import json

    import numpy as np
    import torch

    from v2v.data.image import resize_image
    from v2v.data.video import open_video
    from v2v.device import resolve_device
    from v2v.errors import V2VError, unknown_key_message
    from v2v.metrics.image import psnr, ssim

    if not args.pred or not args.gt:
        raise V2VError("v2v eval: --pred and --gt are required (or `v2v eval keyframe --config CFG ...`)")
    device = resolve_device(args.device)
    flow_root = Path(args.flow_prev) if args.flow_prev else None
    if flow_root is not None and not flow_root.is_dir():
        raise V2VError(f"--flow-prev {flow_root}: not a folder")
    occ_root = Path(args.occ_prev) if args.occ_prev else None
    if occ_root is not None and not occ_root.is_dir():
        raise V2VError(f"--occ-prev {occ_root}: not a folder")
    if args.metrics:
        metrics = [m.strip().lower() for m in args.metrics.split(",") if m.strip()]
    else:
        metrics = ["psnr", "ssim"] + (["warp"] if flow_root else []) + (["akd", "mkr"] if args.kp_pred else [])
    for m in metrics:
        if m not in METRICS:
            raise V2VError("--metrics: " + unknown_key_message("metric", m, METRICS))
    if "warp" in metrics and flow_root is None:
        raise V2VError("--metrics warp needs --flow-prev (ground-truth backward flows to the previous frame)")
    kp_roots = None
    if args.kp_pred or args.kp_gt:
        if not (args.kp_pred and args.kp_gt):
            raise V2VError("--kp-pred and --kp-gt go together")
        kp_roots = (Path(args.kp_pred), Path(args.kp_gt))
        for r, what in zip(kp_roots, ("--kp-pred", "--kp-gt"), strict=True):
            if not r.is_dir():
                raise V2VError(f"{what} {r}: not a folder")
    if ("akd" in metrics or "mkr" in metrics) and kp_roots is None:
        raise V2VError("--metrics akd/mkr need --kp-pred and --kp-gt (folders of OpenPose JSON)")
    if args.max_frames is not None and args.max_frames < 1:
        raise V2VError(f"--max-frames must be >= 1 (got {args.max_frames})")

    lp = None
    if "lpips" in metrics:
        from v2v.metrics.lpips import LPIPS

        lp = LPIPS(args.lpips_net, backbone_path=args.lpips_backbone, heads_path=args.lpips_heads).to(device)
    fid_acc = None
    if "fid" in metrics:
        from v2v.metrics.fid import FIDAccumulator

        fid_acc = FIDAccumulator(device=device)

    pairs = _pairs(Path(args.pred), Path(args.gt), flow_root, occ_root)
    collection = not _is_single_video(Path(args.gt))
    results: dict[str, dict] = {}
    per_frame: dict[str, dict] = {}
    notes: list[str] = []
    for name, pred_path, gt_path, flow_dir, occ_dir in pairs:
        flows, occs = [], []
        if "warp" in metrics:
            flows = _flow_files(flow_dir)
            if not flows:
                raise V2VError(f"{flow_dir}: no .flo files")
            occ_dir = occ_dir or _auto_occ(flow_dir)
            occs = _occ_files(occ_dir) if occ_dir is not None else []
            if occs and len(occs) != len(flows):
                raise V2VError(f"{occ_dir}: {len(occs)} masks for {len(flows)} flows in {flow_dir}")
        kp_files = _kp_files(kp_roots, name, collection) if kp_roots is not None else None
        vals: dict[str, list] = {m: [] for m in metrics if m != "fid"}
        if "warp" in metrics:
            vals["warp_gt"] = []
        prev_p = prev_g = None
        n = 0
        embs = []
        with open_video(pred_path) as rp, open_video(gt_path) as rg:
            ip, ig = iter(rp), iter(rg)
            while args.max_frames is None or n < args.max_frames:
                fp_, fg_ = next(ip, None), next(ig, None)
                if fp_ is None or fg_ is None:
                    if (fp_ is None) != (fg_ is None):
                        notes.append(f"{name}: frame counts differ; evaluated the first {n}")
                    break
                if fp_.shape != fg_.shape:
                    if not args.resize:
                        raise V2VError(f"{pred_path}: frame size {fp_.shape[1]}x{fp_.shape[0]} differs from "
                                       f"ground truth {fg_.shape[1]}x{fg_.shape[0]} (use --resize)")
                    fp_ = resize_image(fp_, fg_.shape[:2])
                tp = torch.from_numpy(fp_).permute(2, 0, 1)[None].float().div(255).to(device)
                tg = torch.from_numpy(fg_).permute(2, 0, 1)[None].float().div(255).to(device)
                if "psnr" in vals:
                    vals["psnr"].append(float(psnr(tp, tg)))
                if "ssim" in vals:
                    vals["ssim"].append(float(ssim(tp, tg)))
                if lp is not None:
                    with torch.no_grad():
                        vals["lpips"].append(float(lp(tp, tg)))
                if kp_files is not None:
                    a, m_ = _kp_one(kp_files, n)
                    if "akd" in vals:
                        vals["akd"].append(a)
                    if "mkr" in vals:
                        vals["mkr"].append(m_)
                if fid_acc is not None:
                    fid_acc.update(tp, real=False)
                    fid_acc.update(tg, real=True)
                if "warp" in vals and n >= 1:
                    vals["warp"].append(_warp_one(prev_p, tp, flows, occs, n, flow_dir, device))
                    vals["warp_gt"].append(_warp_one(prev_g, tg, flows, occs, n, flow_dir, device))
                if "acd" in vals:
                    from v2v.metrics.acd import frame_embedding

                    embs.append(frame_embedding(tp.cpu())[0])
                prev_p, prev_g = tp, tg
                n += 1
        if "acd" in vals and len(embs) >= 2:
            e = torch.stack(embs)
            iu = torch.triu_indices(len(embs), len(embs), 1)
            vals["acd"] = [float(torch.cdist(e, e)[iu[0], iu[1]].mean())]
        if n == 0:
            raise V2VError(f"{pred_path}: no frames to evaluate")
        results[name] = {"frames": n}
        for k, v in vals.items():
            v = [x for x in v if not (k == "akd" and np.isnan(x))]  # frames without common keypoints
            results[name][k] = float(np.mean(v)) if v else None
        per_frame[name] = vals

    keys = [k for k in ("psnr", "ssim", "lpips", "warp", "warp_gt", "akd", "mkr", "acd")
            if k in metrics or (k == "warp_gt" and "warp" in metrics)]
    mean = {}
    for k in keys:
        xs = [r[k] for r in results.values() if r.get(k) is not None]
        mean[k] = float(np.mean(xs)) if xs else None
    if fid_acc is not None:
        mean["fid"] = fid_acc.compute()
    _print_table(results, mean, keys, notes)
    if args.json:
        from v2v.utils import atomic_write

        out = {"pred": os.fspath(args.pred), "gt": os.fspath(args.gt), "metrics": metrics, "mean": mean,
               "videos": results, "per_frame": per_frame, "notes": notes}
        with atomic_write(args.json, "w", encoding="utf-8") as f:
            json.dump(_jsonable(out), f, indent=1, allow_nan=False)
            f.write("\n")
    return 0


def _kp_files(roots, name: str, collection: bool) -> tuple[list[Path], list[Path]]:
    from v2v.data.video import natural_key
    from v2v.errors import V2VError

    out = []
    for root in roots:
        d = root / name if collection else root
        if collection and (d / "openpose").is_dir():
            d = d / "openpose"  # puppets layout: <video>/openpose
        if not d.is_dir():
            raise V2VError(f"{root}: no keypoint folder for video '{name}'")
        files = sorted(d.glob("*.json"), key=lambda p: natural_key(p.name))
        if not files:
            raise V2VError(f"{d}: no OpenPose .json files")
        out.append(files)
    return out[0], out[1]


def _kp_one(kp_files, t: int) -> tuple[float, float]:
    """(AKD in pixels, MKR) of frame ``t`` from OpenPose JSON (body keypoints, confidence > 0)."""
    import numpy as np
    import torch

    from v2v.data.pose import read_openpose_json
    from v2v.errors import V2VError
    from v2v.metrics.keypoints import akd, mkr

    pred_files, gt_files = kp_files
    if t >= len(pred_files) or t >= len(gt_files):
        raise V2VError(f"keypoints: frame {t} has no JSON file ({len(pred_files)} predicted, {len(gt_files)} gt)")
    g = read_openpose_json(gt_files[t])
    p = read_openpose_json(pred_files[t])
    if g is None:
        return float("nan"), 0.0
    gb = np.asarray(g.body, np.float64)
    pb = np.zeros_like(gb) if p is None else np.asarray(p.body, np.float64)
    if pb.shape != gb.shape:
        raise V2VError(f"{pred_files[t]}: {pb.shape[0]} body keypoints, ground truth {gt_files[t]} has {gb.shape[0]}")
    vg, vp = torch.from_numpy(gb[:, 2] > 0)[None], torch.from_numpy(pb[:, 2] > 0)[None]
    a = akd(torch.from_numpy(pb[None, :, :2]), torch.from_numpy(gb[None, :, :2]), vp, vg)
    return float(a[0]), float(mkr(vg, vp)[0])


def _jsonable(obj):
    """Strict JSON: non-finite floats (PSNR of identical frames) become the strings "inf"/"nan"."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _warp_one(prev, cur, flows, occs, t, flow_dir, device) -> float:
    import cv2
    import torch

    from v2v.errors import V2VError
    from v2v.metrics.temporal import warp_error
    from v2v.ops.flow import read_flo

    if t - 1 >= len(flows):
        raise V2VError(f"{flow_dir}: {len(flows)} flows, but frame {t} needs flow number {t} (frames 1..T-1)")
    fl = read_flo(flows[t - 1])
    h, w = cur.shape[-2:]
    if fl.shape[:2] != (h, w):
        raise V2VError(f"{flows[t - 1]}: flow size {fl.shape[1]}x{fl.shape[0]} != frame size {w}x{h}")
    flow = torch.from_numpy(fl).permute(2, 0, 1)[None, None].to(device)
    occ = None
    if occs:
        m = cv2.imread(str(occs[t - 1]), cv2.IMREAD_GRAYSCALE)
        if m is None or m.shape != (h, w):
            raise V2VError(f"{occs[t - 1]}: unreadable or not a {w}x{h} mask")
        occ = torch.from_numpy((m > 127).astype("float32"))[None, None, None].to(device)
    video = torch.stack([prev, cur], 1)  # 1,2,3,H,W
    return float(warp_error(video, flow, occ))


def _print_table(results, mean, keys, notes) -> None:
    def fmt(v):
        if v is None:
            return "-"
        if v == float("inf"):
            return "inf"
        return f"{v:.4f}"

    cols = ["video", "frames"] + keys
    rows = [[name, str(r["frames"])] + [fmt(r.get(k)) for k in keys] for name, r in results.items()]
    if len(results) > 1 or "fid" in mean:
        rows.append(["mean", str(sum(r["frames"] for r in results.values()))] + [fmt(mean.get(k)) for k in keys])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    if "fid" in mean:
        print(f"fid (all frames pooled): {mean['fid']:.4f}")
    for n in notes:
        print(f"note: {n}")
