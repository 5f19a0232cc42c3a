"""Img2Vid commands: ``generate img2vid``, ``convert img2vid`` (``parity img2vid`` is the registry's generic one).

``v2v generate img2vid --config CFG --checkpoint CKPT --labels MAP.png [--first-frame IMG |
--first-frame-generator G.pth] --out OUT.mp4 [--samples N] [--fps F] [--size HxW]``

* CFG + CKPT: a v2v YAML (``model:`` section) with a v2v safetensors (training checkpoint or
  ``convert`` output), or the official ``opt.json`` with the official ``NNNNNN_model.pth.tar``.
* ``--labels``: a label-id PNG (8/16-bit), a folder of them or a label video (its first frame is used).
  Ids become mask channels by ``model.label_ids`` / ``model.label_groups`` (``--label-ids``,
  ``--label-groups "0,1;2;..."`` override them); an id outside the groups is an error.
* Resize rule: the label map is resized to exactly H x W (``--size``, default the model's size)
  by nearest-neighbour sampling of pixel centres, the first frame with OpenCV INTER_AREA when
  shrinking / bilinear when enlarging; the aspect ratio is not preserved (Cityscapes 2048x1024 ->
  256x128 keeps 2:1). H and W must be multiples of 32 and >= 128, and
  ``motion_widths[3]*(H/16)*(W/16)`` a multiple of ``z_dim``.
* Output: 1 + T frames (the first frame, then the T predicted frames); ``--samples N`` draws N
  latents (one N(0,1) vector per sample repeated over its latent rows, as the official test
  script), written side by side (``--layout side``, default) or as ``OUT_k.mp4`` (``--layout files``).
  Everything is computed before anything is written; each file appears atomically.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from v2v.errors import V2VError


def _have(cli, group: str, name: str) -> bool:
    sub = cli._groups.get(group)
    return sub is not None and name in sub.choices


def register(cli):
    p = cli.group_command("generate", "img2vid", help="one label map (+ first frame) -> a short video (seg2vid)")
    p.add_argument("--config", required=True, help="v2v YAML (model: section) or official seg2vid opt.json")
    p.add_argument("--checkpoint", required=True, help="v2v .safetensors or official NNNNNN_model.pth.tar")
    p.add_argument("--labels", default=None, help="label-id PNG, a folder of them, or a label video (first frame)")
    p.add_argument("--clips", default=None,
                   help="instead of --labels: a dataset folder (config data: section layout); writes, per held-out "
                        "clip, OUT/pred/<clip>/ (the T predicted frames, z = 0), OUT/gt/<clip>/ and OUT/copy/<clip>/ "
                        "(the first frame repeated) for `v2v eval`")
    p.add_argument("--split", default="test", help="with --clips: the split (default test)")
    p.add_argument("--first-frame", default=None, help="the real first frame (image)")
    p.add_argument("--first-frame-generator", default=None,
                   help="stage 1: pix2pixHD generator (official latest_net_G.pth or v2v .safetensors)")
    p.add_argument("--first-frame-generator-opt", default=None,
                   help="official pix2pixHD opt.txt (default: the one beside the checkpoint)")
    p.add_argument("--instances", default=None, help="instance-id map for the first-frame generator (optional)")
    p.add_argument("--out", required=True, help="output video (.mp4 .webm .gif) or folder")
    p.add_argument("--samples", type=int, default=1, help="number of futures (different latents)")
    p.add_argument("--layout", choices=("side", "files"), default="side",
                   help="several samples: side by side in one video (default) or OUT_k files")
    p.add_argument("--fps", type=float, default=8.0, help="output frame rate (default 8)")
    p.add_argument("--size", default=None, help="HxW (default: the model's size)")
    p.add_argument("--label-ids", choices=("train", "cityscapes"), default=None,
                   help="override model.label_ids (cityscapes: full labelIds -> trainIds)")
    p.add_argument("--label-groups", default=None,
                   help='override model.label_groups: ids per mask channel, e.g. "0,1;2,3,4;...;17,18,19"')
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="fp32",
                   help="compute precision (reduced ones only where the device runs them natively; v2v.precision)")
    p.set_defaults(func=run_generate)

    if not _have(cli, "convert", "img2vid"):
        p = cli.group_command("convert", "img2vid",
                              help="official seg2vid NNNNNN_model.pth.tar + opt.json -> v2v safetensors")
        p.add_argument("checkpoint", help="official checkpoint ({'vae', 'optimizer'})")
        p.add_argument("--opt", default=None, help="opt.json (parse_opts values; fixture files add vae_ctor / widths)")
        p.add_argument("--out", required=True,
                       help="output folder (img2vid.safetensors + img2vid.yaml + vgg19.safetensors)")
        p.set_defaults(func=run_convert)


# ----------------------------------------------------------------------------------------------
def parse_hw(text: str):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise V2VError(f"--size '{text}': expected HxW, e.g. 128x256") from None
    return h, w


def parse_groups(text: str):
    try:
        return [[int(v) for v in g.split(",") if v.strip()] for g in text.split(";")]
    except ValueError:
        raise V2VError(f"--label-groups '{text}': expected ids per channel like '0,1;2;3,4'") from None


def load_system(config: str, checkpoint: str, size=None, label_ids=None, label_groups=None):
    """(Img2VidSystem in eval mode, config) from a v2v YAML + safetensors or official opt.json + .pth.tar."""
    import dataclasses

    from v2v.compat.img2vid import checkpoint_filter_fn, config_from_official, read_official
    from v2v.config import from_dict, load_yaml
    from v2v.models.img2vid import Img2VidModelConfig, Img2VidSystem
    from v2v.weights_io import check_state_dict, read_weights

    if not os.path.isfile(config):
        raise V2VError(f"--config: file not found: {config}")
    official = str(checkpoint).endswith((".pth.tar", ".pth", ".pt"))
    sd = None
    if config.endswith(".json"):
        if not official:
            raise V2VError(f"--config {config} is an official opt.json: pair it with the official .pth.tar "
                           f"(or convert it: v2v convert img2vid)")
        options, osd = read_official(checkpoint, config)
        cfg = config_from_official(options)
        sd = checkpoint_filter_fn(osd, cfg)
    else:
        data = load_yaml(config)
        cfg = from_dict(Img2VidModelConfig, data.get("model", {}) or {}, prefix="model")
    if sd is None:
        if official:
            _, osd = read_official(checkpoint, None)
            sd = checkpoint_filter_fn(osd, cfg)
        else:
            tensors, _ = read_weights(checkpoint)
            sd = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")} or tensors
            sd = {k: v for k, v in sd.items() if not k.startswith("ema.")}
    changes = {}
    if size is not None:
        changes["size"] = list(size)
    if label_ids is not None:
        changes["label_ids"] = label_ids
    if label_groups is not None:
        changes["label_groups"] = label_groups
    cfg = dataclasses.replace(cfg, **changes)
    system = Img2VidSystem.from_config(cfg, inference=True)
    want = system.state_dict()
    check_state_dict(want, sd, checkpoint)
    system.load_state_dict({k: v for k, v in sd.items() if k in want})
    return system.eval(), cfg


def read_labels(path: str):
    """A label map ``H,W`` int32 from a PNG, the first PNG of a folder, or the first frame of a label video."""
    from v2v.data.image import read_label_map
    from v2v.data.video import is_video_path, list_frames, open_video

    p = Path(path)
    if not p.exists():
        raise V2VError(f"--labels: not found: {path}")
    if p.is_dir():
        files = list_frames(p)
        if not files:
            raise V2VError(f"--labels {path}: no label images inside")
        return read_label_map(files[0])
    if is_video_path(p):
        for frame in open_video(p):
            return frame[..., 0].astype("int32")
        raise V2VError(f"--labels {path}: video has no frames")
    return read_label_map(p)


def nearest_resize(arr, hw):
    """Integer map -> ``hw`` by pixel-centre nearest sampling (src = floor((i + 0.5) * in / out))."""
    import numpy as np

    H, W = hw
    h, w = arr.shape[:2]
    ys = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)
    xs = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)
    return arr[ys][:, xs]


def run_generate(args) -> int:
    import torch

    from v2v.data.image import load_image_tensor
    from v2v.data.video import VideoWriter
    from v2v.device import resolve_device
    from v2v.models.img2vid import check_size

    if args.clips:
        return run_clips(args)
    if not args.labels:
        raise V2VError("give --labels MAP (or --clips DATA_ROOT)")
    if bool(args.first_frame) == bool(args.first_frame_generator):
        raise V2VError("give exactly one of --first-frame IMG or --first-frame-generator CKPT")
    if args.samples < 1:
        raise V2VError(f"--samples must be >= 1, got {args.samples}")
    if not args.fps or args.fps <= 0:
        raise V2VError(f"--fps must be > 0, got {args.fps}")
    from v2v.precision import resolve_precision

    precision = resolve_precision(args.precision, getattr(args, "device", "auto"))
    size = parse_hw(args.size) if args.size else None
    if size is not None:
        check_size(*size, where="--size")
    groups = parse_groups(args.label_groups) if args.label_groups else None
    system, cfg = load_system(args.config, args.checkpoint, size, args.label_ids, groups)
    H, W = cfg.size
    device = resolve_device(getattr(args, "device", "auto"))
    system.to(device)
    labels = torch.from_numpy(nearest_resize(read_labels(args.labels), (H, W))).long()[None].to(device)
    system.masks(labels)  # validates ids before any heavy work
    if args.first_frame:
        if not os.path.isfile(args.first_frame):
            raise V2VError(f"--first-frame: not found: {args.first_frame}")
        frame1 = load_image_tensor(args.first_frame, (H, W), device)
    else:
        from v2v.compat.img2vid import load_first_frame_generator

        G = load_first_frame_generator(args.first_frame_generator, args.first_frame_generator_opt).to(device)
        g_labels = labels.clamp_min(0)  # pix2pixHD takes the ids as they are (Cityscapes: labelIds; -1 -> 0)
        inst = None
        if args.instances:
            inst = torch.from_numpy(nearest_resize(read_labels(args.instances), (H, W))).long()[None].to(device)
        frame1 = G(g_labels, inst)
    videos = []
    for k in range(args.samples):
        out = system.generate(frame1, labels, seed=int(getattr(args, "seed", 0) or 0) + k, precision=precision)
        videos.append(out["video"][0].cpu())  # 1+T,3,H,W
    outs = []
    if args.layout == "side" or args.samples == 1:
        outs.append((args.out, torch.cat(videos, -1)))
    else:
        stem, ext = os.path.splitext(args.out)
        outs.extend((f"{stem}_{k}{ext}", v) for k, v in enumerate(videos))
    for path, frames in outs:
        parent = os.path.dirname(os.path.abspath(path.rstrip("/")))
        if not os.path.isdir(parent):
            raise V2VError(f"--out {path}: folder {parent} does not exist")
    for path, frames in outs:
        with VideoWriter(path, args.fps) as w:
            w.write(frames)
        print(f"wrote {path}: {frames.shape[0]} frames {W * (args.samples if args.layout == 'side' else 1)}x{H} "
              f"at {args.fps:g} fps")
    return 0


def run_clips(args) -> int:
    """Held-out clips of a dataset -> pred / gt / copy frame folders (PNG) for ``v2v eval``."""
    import dataclasses
    import shutil
    import tempfile

    import torch

    from v2v.config import from_dict, load_yaml
    from v2v.data.video import VideoWriter
    from v2v.models.img2vid import Img2VidDataConfig, Img2VidSystem

    system, cfg = load_system(args.config, args.checkpoint)
    data = load_yaml(args.config).get("data", {}) if args.config.endswith((".yaml", ".yml")) else {}
    dcfg = dataclasses.replace(from_dict(Img2VidDataConfig, data or {}, prefix="data"), root=args.clips,
                               size=list(cfg.size), test_split=args.split)
    ds = Img2VidSystem.build_dataset(dcfg, "test", cfg)
    if ds is None:
        raise V2VError(f"--clips {args.clips}: no {args.split}_A / {args.split}_B folders")
    if os.path.exists(args.out):
        raise V2VError(f"--out {args.out} exists; give a new folder")
    tmp = tempfile.mkdtemp(prefix=".img2vid-", dir=os.path.dirname(os.path.abspath(args.out)) or ".")
    try:
        for i in range(len(ds)):
            item = ds[i]
            imgs = item["images"][None].float()
            T = cfg.num_predicted_frames
            z = torch.zeros(system.vae.rows_per_sample, cfg.z_dim)
            pred = system.generate(imgs[:, 0], item["labels"][None, 0], z=z, seed=i)["refined"][0]
            name = f"{item.get('seq', 'clip')}_{int(item.get('start', i)):05d}"
            for kind, frames in (("pred", pred), ("gt", imgs[0, 1:1 + T]), ("copy", imgs[0, :1].expand(T, -1, -1, -1))):
                with VideoWriter(os.path.join(tmp, kind, name) + "/", args.fps) as w:
                    w.write(frames)
        os.replace(tmp, args.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {len(ds)} clips under {args.out}/pred, gt, copy (evaluate: v2v eval --pred {args.out}/pred "
          f"--gt {args.out}/gt)")
    return 0


def run_convert(args) -> int:
    from v2v.compat.img2vid import load_official_system, read_official, vgg_state_dict
    from v2v.config import save_yaml, to_dict
    from v2v.weights_io import save_weights

    system, _ = load_official_system(args.checkpoint, args.opt, inference=True)
    os.makedirs(args.out, exist_ok=True)
    cfg = to_dict(system.cfg)
    save_weights(system, os.path.join(args.out, "img2vid.safetensors"),
                 {"system": "img2vid", "config": json.dumps(cfg), "source": os.path.basename(args.checkpoint)})
    _, sd = read_official(args.checkpoint, args.opt)
    try:
        vgg = vgg_state_dict(sd)
    except V2VError:
        vgg = None
    if vgg is not None:
        save_weights(vgg, os.path.join(args.out, "vgg19.safetensors"), {"source": os.path.basename(args.checkpoint)})
        cfg["vgg_weights"] = os.path.join(args.out, "vgg19.safetensors")
    save_yaml({"system": "img2vid", "model": cfg}, os.path.join(args.out, "img2vid.yaml"))
    print(f"wrote {args.out}/img2vid.safetensors" + (" and vgg19.safetensors (the checkpoint's VGG19, usable as "
                                                      "model.vgg_weights)" if vgg is not None else ""))
    return 0
