"""`v2v crop`: a stable square crop of the face (or body) in a video or image (FOMM crop-video.py)."""
from __future__ import annotations

import os


def register(cli):
    p = cli.command("crop", help="find the face or body in a video/image and cut out a stable square crop")
    p.add_argument("input", help="video (mp4/gif/frame folder) or image")
    p.add_argument("--out", default=None,
                   help="cropped video or image to write (the longest tube); without it, print the boxes")
    p.add_argument("--target", choices=("face", "body"), default="face", help="what to find (default face)")
    p.add_argument("--detector", choices=("auto", "fan", "mediapipe", "haar"), default="auto",
                   help="auto: face-alignment's S3FD if its weights are local, else mediapipe (v2v[pose]), "
                        "else OpenCV Haar cascades (always available)")
    p.add_argument("--increase", type=float, default=0.1,
                   help="enlarge the box by this fraction of its size on every side (FOMM default 0.1)")
    p.add_argument("--iou-with-initial", type=float, default=0.25,
                   help="a detection continues a tube when its IoU with the tube is above this (FOMM 0.25)")
    p.add_argument("--min-frames", type=int, default=None,
                   help="drop tubes shorter than this (FOMM 150; default min(150, clip length))")
    p.add_argument("--max-gap", type=int, default=None,
                   help="frames without a detection a tube survives (default: one second; 0 = FOMM exactly)")
    p.add_argument("--size", type=int, default=256, help="output side in pixels (default 256; 0 keeps the crop)")
    p.add_argument("--all", action="store_true", help="write every tube: OUT_0, OUT_1, ... (longest first)")
    p.add_argument("--print-command", action="store_true",
                   help="print the ffmpeg command for each tube (FOMM style) instead of writing")
    p.set_defaults(func=run_crop)


def auto_crop_box(path: str, target: str = "face", detector: str = "auto", device: str = "cpu",
                  increase: float = 0.1, log=None):
    """The crop box ``(left, top, right, bottom)`` of the longest tube in a video (or None)."""
    from v2v.data.crop import find_tubes, make_detector
    from v2v.data.video import open_video

    det, used = make_detector(detector, target, device)
    with open_video(path) as reader:
        n = reader.num_frames or 150
        tubes = find_tubes(reader, det, increase=increase, min_frames=max(1, min(150, n // 2)),
                           max_gap=max(1, round(reader.fps)))
    if log:
        log(f"auto-crop: {used} detector, {len(tubes)} tube(s)" + (f", box {tubes[0].box}" if tubes else ""))
    return tubes[0].box if tubes else None


def _crop(frame, box, size: int):
    from v2v.data.image import resize_image

    left, top, right, bottom = box
    out = frame[top:bottom, left:right]
    return resize_image(out, (size, size)) if size else out


def run_crop(args) -> int:
    from v2v.data.crop import find_tubes, make_detector
    from v2v.data.image import IMAGE_EXTENSIONS, read_image, write_image
    from v2v.data.video import VideoWriter, open_video
    from v2v.errors import V2VError

    if args.size < 0:
        raise V2VError(f"--size must be >= 0, got {args.size}")
    if not 0 <= args.iou_with_initial < 1:
        raise V2VError(f"--iou-with-initial must be in [0, 1), got {args.iou_with_initial}")
    if args.increase < 0:
        raise V2VError(f"--increase must be >= 0, got {args.increase}")
    is_image = os.path.splitext(args.input)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(args.input)
    if args.out:
        _check_out(args.input, args.out)
    det, used = make_detector(args.detector, args.target, "cpu" if args.device == "auto" else args.device)
    reader = None
    if is_image:
        frames, fps, n = [read_image(args.input)], 1.0, 1
    else:
        reader = open_video(args.input)
        frames, fps, n = reader, reader.fps, reader.num_frames
    min_frames = args.min_frames if args.min_frames is not None else (1 if is_image else min(150, n or 150))
    max_gap = args.max_gap if args.max_gap is not None else (0 if is_image else max(1, round(fps)))
    try:
        tubes = find_tubes(frames, det, increase=args.increase, iou_with_initial=args.iou_with_initial,
                           min_frames=min_frames, max_gap=max_gap)
    finally:
        if reader is not None:
            reader.close()
    if not tubes:
        raise V2VError(f"{args.input}: no {args.target} found in at least {min_frames} frame(s) "
                       f"(detector {used}); try --detector, --target or a lower --min-frames")
    for k, t in enumerate(tubes):
        left, top, right, bottom = t.box
        line = (f"tube {k}: frames {t.start}-{t.end} ({t.frames}), box left={left} top={top} "
                f"width={right - left} height={bottom - top} ({used} detector)")
        if args.print_command:
            line = t.ffmpeg_command(args.input, args.out or f"crop_{k}.mp4", fps, args.size or None)
        print(line)
    if args.print_command or not args.out:
        return 0
    todo = list(enumerate(tubes)) if args.all else [(0, tubes[0])]
    for k, t in todo:
        out = args.out
        if args.all:
            stem, ext = os.path.splitext(args.out)
            out = f"{stem}_{k}{ext}"
        if is_image:
            write_image(out, _crop(frames[0], t.box, args.size))
        else:
            with open_video(args.input) as r, VideoWriter(out, r.fps) as w:
                for i, frame in enumerate(r):
                    if i > t.end:
                        break
                    if i >= t.start:
                        w.write(_crop(frame, t.box, args.size))
        print(f"wrote {out}")
    return 0


def _check_out(inp: str, out: str) -> None:
    """Refuse an output that is, contains or lies inside the input (shared helper when present)."""
    try:
        from v2v.utils import check_output_path  # the shared output-path guard (hardening)
    except ImportError:
        check_output_path = None
    if check_output_path is not None:
        check_output_path(out, inputs=[inp])
        return
    from v2v.errors import V2VError

    a, b = os.path.realpath(inp), os.path.realpath(out)
    if a == b or a.startswith(b + os.sep) or b.startswith(a + os.sep):
        raise V2VError(f"--out {out} would overwrite the input {inp}; choose another path")
