"""Everybody Dance Now commands.

    v2v dance --config CFG --checkpoint CKPT --source-video SRC --target-stats TARGET_POSES --out OUT.mp4
    v2v pose extract SRC --out POSE_DIR [--backend auto|openpose|puppets|mediapipe]
    v2v pose normalize --source POSE_DIR --target POSE_DIR --out DIR
    v2v pose render POSE_DIR --out DIR [--size 512] [--frame-size HxW] [--facetexts]

``v2v convert dance CKPT_DIR [--config opt.txt] --out DIR`` and ``v2v parity dance FIXTURE_DIR``
are the registry's generic verbs (:mod:`v2v.cli`).
"""
from __future__ import annotations

import json
import os


def register(cli):
    p = cli.command("dance", help="Everybody Dance Now: transfer a source dancer's motion onto the trained target")
    p.add_argument("--config", required=True, help="experiment YAML (configs/dance/*.yaml) or an official opt.txt")
    p.add_argument("--checkpoint", required=True,
                   help="v2v weights (.safetensors from `v2v train` or `v2v convert dance`) or an official folder "
                        "with latest_net_G.pth")
    p.add_argument("--source-video", required=True,
                   help="source: a video (MediaPipe extraction), an OpenPose output folder or a puppets video folder")
    p.add_argument("--target-stats", required=True,
                   help="the target subject's poses (folder) or a stats JSON from `v2v pose normalize`")
    p.add_argument("--out", required=True, help="output video (.mp4, .gif, or a folder ending in /)")
    p.add_argument("--backend", default="auto", help="pose extraction backend: auto, openpose, puppets, mediapipe")
    _add_frame_sizes(p, "when it cannot be found")
    p.add_argument("--fps", type=float, default=None, help="output fps (default: the source's)")
    p.add_argument("--smooth", type=int, default=7, help="temporal median window over keypoints (1 = off)")
    p.add_argument("--no-normalize", action="store_true", help="skip global pose normalisation")
    p.add_argument("--labels-out", default=None, help="also write the rendered label images to this folder")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-audio", action="store_true",
                   help="drop the source video's sound (by default a source video's audio is copied, trimmed)")
    p.set_defaults(func=run_dance)

    p = cli.group_command("pose", "extract", help="extract poses (OpenPose JSON per frame) from a video or folder")
    p.add_argument("source", help="video, OpenPose folder or puppets video folder")
    p.add_argument("--out", required=True, help="output folder of frameNNNNNN_keypoints.json")
    p.add_argument("--backend", default="auto", help="auto, openpose, puppets, mediapipe (needs v2v[pose])")
    p.set_defaults(func=run_extract)

    p = cli.group_command("pose", "normalize",
                          help="global pose normalisation of a source sequence to a target subject (EDN)")
    p.add_argument("--source", required=True, help="source pose folder (OpenPose JSON / EDN YAML)")
    p.add_argument("--target", required=True, help="target pose folder")
    p.add_argument("--out", required=True, help="output folder: normalised JSON + norm_params.json/.txt")
    _add_frame_sizes(p, "(default: found or 1080x1920)")
    for side in ("source", "target"):
        p.add_argument(f"--{side}-median-frac", type=float, default=0.5)
    p.add_argument("--smooth", type=int, default=7, help="median window (1 = off)")
    p.add_argument("--official", action="store_true",
                   help="official output: drop invalid leading frames and the first window-1 frames")
    p.set_defaults(func=run_normalize)

    p = cli.group_command("pose", "render", help="render pose files to EDN skeleton label images (official renderer)")
    p.add_argument("source", help="pose folder (OpenPose JSON or EDN *_pose.yml) or one pose file")
    p.add_argument("--out", required=True, help="output folder for label PNGs")
    p.add_argument("--size", type=int, default=512, help="label height S; labels are S x 2S (official --output_dim)")
    p.add_argument("--frame-size", default=None, help="HxW of the source frames (default: found, else 1080x1920)")
    p.add_argument("--num-face-keypoints", type=int, default=8, help="8, 9 or 22 (official)")
    p.add_argument("--map-25-to-23", action="store_true", help="render BODY_25 as BODY_23 (official flag)")
    p.add_argument("--facetexts", action="store_true", help="also write <out>/facetexts/<name>.txt face boxes")
    p.set_defaults(func=run_render)


# ------------------------------------------------------------------------------------ helpers


def _add_frame_sizes(p, default_note):
    """``--source-size`` / ``--target-size``: HxW of the frames the poses come from."""
    for side in ("source", "target"):
        p.add_argument(f"--{side}-size", default=None, help=f"HxW of the {side} frames {default_note}")


def _hw(text, what):
    from v2v.errors import V2VError

    if text is None:
        return None
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
        return h, w
    except ValueError:
        raise V2VError(f"{what}: expected HxW like 1080x1920, got {text!r}") from None


def _progress(total, desc, enabled=True):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def _load_target(path, target_hw, fmt_23: bool):
    """(stats, frame_hw) of the target subject from a pose folder or a stats JSON."""
    from v2v.data.pose_backends import extract_poses
    from v2v.data.pose_norm import KeypointStats, keypoint_stats
    from v2v.errors import V2VError

    if os.path.isfile(path) and path.endswith(".json"):
        from v2v.utils import read_json

        d = read_json(path, "stats file from `v2v pose normalize`")
        if not isinstance(d, dict) or "target_stats" not in d:
            raise V2VError(f"{path}: not a stats file from `v2v pose normalize` (no 'target_stats')")
        hw = d.get("target_hw") or target_hw or (1080, 1920)
        if not (isinstance(hw, (list, tuple)) and len(hw) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 65536 for v in hw)):
            raise V2VError(f"{path}: target_hw must be [height, width] in pixels, got {str(hw)[:40]}")
        fmt = d.get("format", "BODY_23")
        if fmt not in ("BODY_23", "BODY_25", "COCO_18"):
            raise V2VError(f"{path}: unknown pose format {str(fmt)[:40]!r} (BODY_23, BODY_25 or COCO_18)")
        return KeypointStats.from_dict(d["target_stats"], f"{path}: target_stats"), tuple(hw), fmt
    seq = extract_poses(path, "auto" if os.path.isdir(path) else "openpose")
    hw = target_hw or seq.frame_hw or (1080, 1920)
    frames = [f.to_body23() if (f is not None and fmt_23) else f for f in seq.frames]
    fmt = next((f.format for f in frames if f is not None), "BODY_23")
    st = keypoint_stats(frames, (0, len(frames)), 5000, rng=__import__("numpy").random.default_rng(0),
                        frame_hw=hw, name=f"target poses {path}", fmt=fmt)
    return st, hw, fmt


def _to_target_space(frame, src_hw, tgt_hw):
    from v2v.data.pose_render import to_canvas

    if frame is None or tuple(src_hw) == tuple(tgt_hw):
        return frame
    return to_canvas(frame, src_hw, tgt_hw)[0]


def normalized_sequence(src_frames, src_hw, tgt_stats, tgt_hw, fmt, smooth=7, normalize=True,
                        src_frac=0.5, tgt_frac=0.5, seed=0):
    """Source frames -> normalised, smoothed frames in target pixels, one per source frame.

    Frames without a usable person reuse the nearest processed frame. Returns (frames, params)."""
    import numpy as np

    from v2v.data.pose_norm import compute_norm_params, keypoint_stats, normalize_frames, smooth_sequence
    from v2v.errors import V2VError

    frames = [_to_target_space(f, src_hw, tgt_hw) for f in src_frames]
    frames = [f.to_body23() if (f is not None and fmt == "BODY_23") else f for f in frames]
    params = None
    if normalize:
        sst = keypoint_stats(frames, (0, len(frames)), 20000, rng=np.random.default_rng(seed), frame_hw=tgt_hw,
                             name="source poses", fmt=fmt)
        params = compute_norm_params(tgt_stats, sst, tgt_frac, src_frac, fallback=True)
        res = list(normalize_frames(frames, params, target_width=int(tgt_hw[1]), keep_skipped=True, fmt=fmt))
        out = [r.frame for r in res]
    else:
        out = [f for f in frames]
    valid = [i for i, f in enumerate(out) if f is not None]
    if not valid:
        raise V2VError("source: no frame with exactly one detected person")
    filled = []
    for i in range(len(out)):
        j = min(valid, key=lambda v: (abs(v - i), v))
        filled.append(out[j])
    if smooth and smooth > 1:
        filled = smooth_sequence(filled, smooth, "centered")
    return filled, params


def _load_model(args):
    """(DanceSystem, data config) from --checkpoint and --config (``v2v.load`` detects the format).

    The data geometry comes from the experiment a ``v2v train`` checkpoint embeds, else from the
    YAML's ``data:`` section, else it is the official one (1080x1920 canvas, 512x1024 labels,
    128x128 face box: what official checkpoints and their conversions were trained on)."""
    import v2v
    from v2v.config import from_dict, load_yaml
    from v2v.data.dance import DanceDataConfig
    from v2v.errors import V2VError
    from v2v.weights_io import read_metadata

    ckpt, cfg_path = args.checkpoint, args.config
    ema = False  # a training checkpoint with an EMA generator is used with it (as `v2v train` samples)
    if os.path.isfile(ckpt) and ckpt.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(ckpt, framework="pt") as f:
            ema = any(k.startswith("ema.generator.") for k in f.keys())  # noqa: SIM118
    system = v2v.load(ckpt, cfg_path if cfg_path.endswith((".txt", ".json", ".yaml", ".yml")) else None, ema=ema)
    if type(system).system_name != "dance":
        raise V2VError(f"{ckpt}: a '{type(system).system_name}' checkpoint; `v2v dance` needs a dance one")
    data = None
    if os.path.isfile(ckpt) and ckpt.endswith(".safetensors") and "config" in (meta := read_metadata(ckpt)):
        data = json.loads(meta["config"]).get("data")
    if data is None and cfg_path.endswith((".yaml", ".yml")):
        data = load_yaml(cfg_path).get("data")
    if data is None:
        return system, DanceDataConfig(size=[512, 1024], canvas_height=None, map_25_to_23=True, face_box=[128, 128])
    return system, from_dict(DanceDataConfig, data, prefix="data")


def run_dance(args) -> int:
    import numpy as np
    import torch

    from v2v.data.pose_backends import extract_poses
    from v2v.data.pose_render import _lanczos, canvas_shape_for, face_box, render_canvas, to_canvas
    from v2v.data.video import VideoWriter
    from v2v.device import resolve_device
    from v2v.errors import V2VError

    device = resolve_device(args.device)
    system, data_cfg = _load_model(args)
    system = system.to(device).eval()
    G = system.generator
    fmt23 = bool(data_cfg.map_25_to_23)
    # 1. source poses (extraction or reading)
    seq = extract_poses(args.source_video, args.backend, _hw(args.source_size, "--source-size"))
    src_hw = _hw(args.source_size, "--source-size") or seq.frame_hw
    if src_hw is None:
        raise V2VError(f"{args.source_video}: cannot tell the source frame size; pass --source-size HxW")
    # 2. target statistics and geometry
    tgt_stats, tgt_hw, fmt = _load_target(args.target_stats, _hw(args.target_size, "--target-size"), fmt23)
    out_hw = tuple(data_cfg.size) if data_cfg.size else tuple(tgt_hw)
    canvas_hw = canvas_shape_for(tgt_hw, data_cfg.canvas_height)
    # 3. normalisation + smoothing (keypoints only: cheap, done up front)
    frames, params = normalized_sequence(seq.frames, src_hw, tgt_stats, tgt_hw, fmt, args.smooth,
                                         not args.no_normalize, seed=args.seed)
    fps = args.fps or seq.fps
    box_hw = tuple(data_cfg.face_box) if data_cfg.face_box else None
    need_box = G.face is not None
    # 4-5. render + generate, streaming
    prev, last_box = None, None
    bar = _progress(len(frames), "dance", not args.no_progress)
    if args.labels_out:
        os.makedirs(args.labels_out, exist_ok=True)
    with VideoWriter(args.out, fps) as writer, torch.no_grad():
        for t, fr in enumerate(frames):
            cf, _ = to_canvas(fr, tgt_hw, canvas_hw)
            label = _lanczos(render_canvas(cf, canvas_hw, data_cfg.num_face_keypoints), out_hw)
            box = None
            if need_box:
                try:
                    box = face_box(cf, canvas_hw, out_hw, box_hw, strict=True)
                except V2VError:
                    box = last_box
                if box is None:
                    raise V2VError(f"source frame {t}: missing face box (no nose or ear detected) and no earlier "
                                   f"frame to take it from; the face generator needs one")
                last_box = box
            if args.labels_out:
                from v2v.data.image import write_image

                write_image(os.path.join(args.labels_out, f"{t:06d}.png"), label)
            x = torch.from_numpy(np.array(label)).to(device).permute(2, 0, 1)[None].float() / 255.0
            b = None if box is None else torch.tensor([box], device=device)
            img = G.step_raw(x, prev, b)["image"]
            prev = img
            writer.write(((img[0] + 1) / 2).clamp(0, 1).cpu())
            bar.update(1)
    bar.close()
    msg = f"wrote {len(frames)} frames ({out_hw[1]}x{out_hw[0]}, {fps:g} fps) to {args.out}"
    if params is not None:
        msg += f"; normalisation scale close/far {params.scale_close:.3f}/{params.scale_far:.3f}"
    print(msg)
    if not args.no_audio and os.path.isfile(args.source_video):
        from v2v.data.audio import copy_audio

        if copy_audio(args.source_video, args.out):
            print(f"kept the audio of {args.source_video}")
    return 0


def run_extract(args) -> int:
    from v2v.data.pose import find_pose_sequences, write_openpose_json
    from v2v.data.pose_backends import extract_poses
    from v2v.utils import atomic_write, staged_dir

    # a dataset root of per-sequence folders is processed sequence by sequence, mirrored in --out
    seqs = [("", args.source)]
    if os.path.isdir(args.source) and args.backend in ("auto", "openpose", "puppets"):
        seqs = find_pose_sequences(args.source)
    total = 0
    with staged_dir(args.out) as stage:
        for rel, folder in seqs:
            seq = extract_poses(folder, args.backend)
            out = os.path.join(stage, rel)
            os.makedirs(out, exist_ok=True)
            for t, f in enumerate(seq.frames):
                name = seq.names[t] if t < len(seq.names) else f"frame{t:06d}"
                write_openpose_json(os.path.join(out, f"{name}_keypoints.json"), f)
            meta = {"source": os.fspath(folder), "frame_hw": list(seq.frame_hw) if seq.frame_hw else None,
                    "fps": seq.fps}
            with atomic_write(os.path.join(out, "meta.json"), "w", encoding="utf-8") as fh:
                json.dump(meta, fh)
            total += len(seq.frames)
    where = f" in {len(seqs)} sequences" if len(seqs) > 1 or seqs[0][0] else ""
    print(f"wrote {total} pose files{where} to {args.out}")
    return 0


def _meta_hw(m, path):
    """``frame_hw`` of a meta.json (None when absent); a wrong type is a one-line error."""
    from v2v.errors import V2VError

    hw = m.get("frame_hw") if isinstance(m, dict) else None
    if hw is None:
        return None
    if not (isinstance(hw, list) and len(hw) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 65536 for v in hw)):
        raise V2VError(f"{path}: frame_hw must be [height, width] in pixels, got {str(hw)[:40]}")
    return tuple(hw)


def _seq_hw(seq, given, what):
    hw = _hw(given, what) or seq.frame_hw
    if hw is None and os.path.isfile(os.path.join(seq.source, "meta.json")):
        from v2v.utils import read_json

        m = read_json(os.path.join(seq.source, "meta.json"), "meta.json")
        hw = _meta_hw(m, os.path.join(seq.source, "meta.json"))
    return tuple(hw) if hw else (1080, 1920)


def run_normalize(args) -> int:
    from v2v.data.pose import find_pose_sequences
    from v2v.utils import staged_dir

    # --source may be a dataset root of per-sequence folders: each is normalised to the target and
    # written under the same relative path in --out
    seqs = find_pose_sequences(args.source)
    with staged_dir(args.out) as stage:
        for rel, folder in seqs:
            _normalize_one(args, folder, os.path.join(stage, rel), os.path.join(args.out, rel))
    return 0


def _normalize_one(args, source, out_dir, shown_out) -> None:
    import numpy as np

    from v2v.data.pose import write_openpose_json
    from v2v.data.pose_backends import extract_poses
    from v2v.data.pose_norm import compute_norm_params, keypoint_stats, normalize_frames, smooth_sequence
    from v2v.utils import atomic_write

    src = extract_poses(source, "openpose" if not os.path.isdir(os.path.join(source, "openpose")) else "puppets")
    tgt = extract_poses(args.target, "openpose" if not os.path.isdir(os.path.join(args.target, "openpose")) else "puppets")
    src_hw = _seq_hw(src, args.source_size, "--source-size")
    tgt_hw = _seq_hw(tgt, args.target_size, "--target-size")
    tframes = [f.to_body23() if f is not None else None for f in tgt.frames]
    tst = keypoint_stats(tframes, (0, len(tframes)), 5000, rng=np.random.default_rng(args.seed), frame_hw=tgt_hw,
                         name=f"target poses {args.target}")
    os.makedirs(out_dir, exist_ok=True)
    if args.official:
        frames = [_to_target_space(f, src_hw, tgt_hw) for f in src.frames]
        frames = [f.to_body23() if f is not None else None for f in frames]
        sst = keypoint_stats(frames, (0, len(frames)), 20000, rng=np.random.default_rng(args.seed), frame_hw=tgt_hw,
                             name=f"source poses {source}")
        params = compute_norm_params(tst, sst, args.target_median_frac, args.source_median_frac)
        res = [r for r in normalize_frames(frames, params, int(tgt_hw[1])) if r.frame is not None]
        out = smooth_sequence([r.frame for r in res], args.smooth, "official") if args.smooth > 1 else [r.frame for r in res]
        names = [f"frame{k:06d}" for k in range(len(out))]
    else:
        out, params = normalized_sequence(src.frames, src_hw, tst, tgt_hw, "BODY_23", args.smooth, True,
                                          args.source_median_frac, args.target_median_frac, args.seed)
        sst = None
        names = src.names
    for name, f in zip(names, out):
        write_openpose_json(os.path.join(out_dir, f"{name}_keypoints.json"), f)
    info = {"norm_params": params.to_dict(), "target_stats": tst.to_dict(), "target_hw": list(tgt_hw),
            "source_hw": list(src_hw), "format": "BODY_23"}
    with atomic_write(os.path.join(out_dir, "norm_params.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    with atomic_write(os.path.join(out_dir, "norm_params.txt"), "w", encoding="utf-8") as f:
        f.write(params.norm_params_txt())
    with atomic_write(os.path.join(out_dir, "meta.json"), "w", encoding="utf-8") as f:
        json.dump({"frame_hw": list(tgt_hw), "source": os.fspath(source)}, f)
    print(f"wrote {len(out)} normalised pose files to {shown_out}; scale close/far "
          f"{params.scale_close:.4f}/{params.scale_far:.4f}, translation {params.translation}")
    del sst


def run_render(args) -> int:
    from v2v.data.pose import find_pose_sequences
    from v2v.errors import V2VError
    from v2v.utils import staged_dir

    # one pose file, one sequence folder, or a dataset root of per-sequence folders (mirrored)
    seqs = [("", args.source)] if os.path.isfile(args.source) else find_pose_sequences(args.source)
    S = int(args.size)
    n = 0
    with staged_dir(args.out) as stage:
        for rel, folder in seqs:
            n += _render_one(args, folder, os.path.join(stage, rel), S)
    if n == 0:
        raise V2VError(f"{args.source}: no frame with exactly one person to render")
    print(f"wrote {n} label images ({2 * S}x{S}) to {args.out}")
    return 0


def _render_one(args, source, out_dir, S) -> int:
    from v2v.data.image import write_image
    from v2v.data.pose import frame_key, list_pose_files, read_pose
    from v2v.data.pose_backends import extract_poses
    from v2v.data.pose_render import render_label
    from v2v.utils import atomic_write

    if os.path.isfile(source):
        files, hw = [source], _hw(args.frame_size, "--frame-size")
    else:
        seq = extract_poses(source, "openpose" if not os.path.isdir(os.path.join(source, "openpose")) else "puppets")
        files = list_pose_files(source)
        hw = _hw(args.frame_size, "--frame-size") or seq.frame_hw
        if hw is None and os.path.isfile(os.path.join(source, "meta.json")):
            from v2v.utils import read_json

            hw = _meta_hw(read_json(os.path.join(source, "meta.json"), "meta.json"), os.path.join(source, "meta.json"))
    hw = tuple(hw) if hw else (1080, 1920)
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    for p in files:
        fr = read_pose(p)
        if fr is None or fr.num_people != 1:
            continue  # the official renderer skips empty / multi-person frames
        # labels S x 2S and the face box of the official graph_train.py --output_dim S (128x128 box
        # clamped to 512x1024 at every S, as makebox128 does)
        label, box = render_label(fr, hw, (S, 2 * S), (1080, 1920), args.num_face_keypoints, args.map_25_to_23,
                                  with_box=True, box_hw=(128, 128), strict_box=False, box_limit_hw=(512, 1024))
        name = frame_key(p)
        write_image(os.path.join(out_dir, f"{name}.png"), label)
        if args.facetexts:
            with atomic_write(os.path.join(out_dir, "facetexts", f"{name}.txt"), "w", encoding="utf-8") as f:
                f.write(" ".join(str(v) for v in box))
        n += 1
    return n
