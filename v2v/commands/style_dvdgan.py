"""style-dvdgan commands: ``generate style-dvdgan`` and ``convert style-dvdgan``.

``v2v generate style-dvdgan --config CFG --checkpoint CKPT --image IMG --frames T --out OUT.mp4
[--samples N] [--fps F]`` brings one photo to life.

- CKPT: an official ``<epoch>_netG.pth`` (its ``opt.txt`` beside it or given as CFG), a v2v
  ``.safetensors`` (``v2v train`` checkpoint or ``convert`` / ``save_pretrained`` output) or such
  a folder.
- CFG (optional for files that carry their config): a v2v YAML (``model:`` section) or an
  official ``opt.txt`` / ``options.json``. When given, the network is built from CFG and the
  checkpoint must fit it exactly (a mismatch is one error line naming keys and shapes).
- Input rule: any size or mode (gray, RGBA over white, 16-bit) -> RGB; the shorter side is
  resized to the model resolution (INTER_AREA when shrinking, bilinear when enlarging) and the
  centre square is cropped.
- ``--samples N``: N consecutive generator calls, tiled left to right in one video. The model has
  no noise input; consecutive calls differ only through the spectral-norm power iteration of the
  first encoder conv, which advances on every call exactly as in the official code (its
  ``test.py --gen_per_sample``).
- Output: ``T`` frames (frame 0 = the input) at ``--fps`` (default: the official options' fps,
  else 25), written atomically; nothing is written when any input is bad.
"""
from __future__ import annotations

import os
from pathlib import Path

from v2v.errors import V2VError

SYSTEM = "style-dvdgan"


def register(cli):
    p = cli.group_command("generate", SYSTEM, help="one photo -> a short video of what moves in it (StyleGAN2 DVD-GAN)",
                          aliases=["style_dvdgan"])
    p.add_argument("--config", default=None, help="v2v YAML (model: section) or official opt.txt / options.json")
    p.add_argument("--checkpoint", required=True,
                   help="official <epoch>_netG.pth, or a v2v .safetensors file / folder")
    p.add_argument("--image", required=True, help="input photo (any size; centre square crop after resizing)")
    p.add_argument("--frames", type=int, default=None, help="frames T including the input (default: model.frames)")
    p.add_argument("--out", required=True, help="output video (.mp4 .webm .gif) or folder of PNGs")
    p.add_argument("--samples", type=int, default=1, help="N consecutive samples tiled side by side (default 1)")
    p.add_argument("--fps", type=float, default=None, help="output fps (default: official fps, else 25)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="fp32",
                   help="fp32 (default), or a reduced precision where the device runs it natively (v2v.precision)")
    p.add_argument("--modconv", choices=["batched", "grouped"], default="batched",
                   help="modulated-conv formulation (same result; batched is faster on CPU)")
    p.add_argument("--ema", action="store_true", help="use the EMA generator weights of a training checkpoint")
    p.set_defaults(func=run_generate)

    if "convert" not in cli._groups or SYSTEM not in cli._groups["convert"].choices:
        p = cli.group_command("convert", SYSTEM, help="official latest_netG.pth (+Ds, Dt) -> v2v safetensors",
                              aliases=["style_dvdgan"])
        p.add_argument("checkpoint", help="official <epoch>_netG.pth (or its folder)")
        p.add_argument("--opt", default=None, help="official opt.txt / options.json (default: beside the checkpoint)")
        p.add_argument("--out", required=True, help="output folder (style-dvdgan.safetensors + style-dvdgan.yaml)")
        p.add_argument("--discriminators", action="store_true", help="also convert latest_netDs/netDt (for fine-tuning)")
        p.set_defaults(func=run_convert)


# ---- loading -------------------------------------------------------------------------------------
def _is_official_options(path: str) -> bool:
    p = Path(path)
    return p.name.endswith(".txt") or (p.suffix == ".json" and "options" in p.read_text(errors="replace")[:4000])


def model_config_from(config: str):
    """ModelConfig from a v2v YAML (``model:`` section) or an official option file."""
    from v2v.compat.style_dvdgan import config_from_official, read_options
    from v2v.config import from_dict, load_yaml
    from v2v.models.style_dvdgan import StyleDVDGANConfig

    if not os.path.isfile(config):
        raise V2VError(f"--config: file not found: {config}")
    if _is_official_options(config):
        return config_from_official(read_options(config)), read_options(config)
    data = load_yaml(config)
    if not isinstance(data, dict) or not isinstance(data.get("model", {}), dict):
        raise V2VError(f"{config}: expected a v2v YAML with a 'model:' section")
    sysname = data.get("system", SYSTEM)
    if str(sysname).replace("_", "-") != SYSTEM:
        raise V2VError(f"{config}: system is '{sysname}', not {SYSTEM}")
    return from_dict(StyleDVDGANConfig, data.get("model") or {}, prefix="model"), {}


def load_generator(checkpoint: str, config: str | None = None, modconv: str = "batched", ema: bool = False):
    """(inference-built system in eval mode, official options or {}) from any supported checkpoint."""
    from v2v.api import load, load_state
    from v2v.compat import style_dvdgan as compat
    from v2v.models.style_dvdgan import StyleDVDGANSystem

    if not os.path.exists(checkpoint):
        raise V2VError(f"--checkpoint: not found: {checkpoint}")
    official = str(checkpoint).endswith(".pth") or (Path(checkpoint).is_dir()
                                                    and (Path(checkpoint) / "latest_netG.pth").is_file())
    opts: dict = {}
    if config is None:
        if official:
            system, cfg = compat.load_official(checkpoint, None, modconv=modconv)
            opts = compat.read_official(checkpoint, None)[0]
        else:
            system = load(checkpoint, ema=ema)
            if type(system).system_name != SYSTEM:
                raise V2VError(f"{checkpoint}: holds a '{type(system).system_name}' model, not {SYSTEM}")
            _set_modconv(system, modconv)
        return system.eval(), opts
    cfg, opts = model_config_from(config)
    cfg.modconv = modconv
    system = StyleDVDGANSystem.from_config(cfg, inference=True)
    if official:
        o, sd = compat.read_official(checkpoint, config if opts else None)
        opts = opts or o
        load_state(system, compat.checkpoint_filter_fn(sd, cfg), str(checkpoint))
    else:
        from v2v.api import _pretrained_files
        from v2v.weights_io import EMA_PREFIX, read_weights

        path = _pretrained_files(checkpoint)[0] if Path(checkpoint).is_dir() else checkpoint
        tensors, _ = read_weights(path)
        sd = {k: v for k, v in tensors.items() if not k.startswith(EMA_PREFIX)}
        if ema:
            sd.update({k[len(EMA_PREFIX):]: v for k, v in tensors.items() if k.startswith(EMA_PREFIX)})
        load_state(system, sd, str(path))
    return system.eval(), opts


def _set_modconv(system, modconv: str) -> None:
    from v2v.nn.stylegan2 import ModulatedConv2d

    for m in system.modules():
        if isinstance(m, ModulatedConv2d):
            m.fused = modconv == "grouped"
    system.cfg.modconv = modconv


def prepare_image(path: str, resolution: int):
    """The documented input rule: RGB, shorter side -> ``resolution``, centre square crop; ``1,3,R,R`` in [0,1]."""
    import torch

    from v2v.data.image import read_image, resize_image

    img = read_image(path)  # V2VError naming the file when unreadable
    h, w = img.shape[:2]
    s = resolution / min(h, w)
    nh, nw = max(resolution, round(h * s)), max(resolution, round(w * s))
    img = resize_image(img, (nh, nw))
    y0, x0 = (nh - resolution) // 2, (nw - resolution) // 2
    img = img[y0:y0 + resolution, x0:x0 + resolution]
    return torch.from_numpy(img.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)


def run_generate(args) -> int:
    import torch

    from v2v.data.video import write_video
    from v2v.device import resolve_device

    if args.samples < 1:
        raise V2VError(f"--samples must be >= 1 (got {args.samples})")
    if args.frames is not None and args.frames < 2:
        raise V2VError(f"--frames must be >= 2 (the input frame + predictions), got {args.frames}")
    if args.fps is not None and args.fps <= 0:
        raise V2VError(f"--fps must be > 0 (got {args.fps})")
    if not os.path.isfile(args.image):
        raise V2VError(f"--image: file not found: {args.image}")
    from v2v.precision import autocast_dtype, resolve_precision

    dtype = autocast_dtype(resolve_precision(args.precision, args.device))  # refuses emulated modes, before loading
    system, opts = load_generator(args.checkpoint, args.config, args.modconv, args.ema)
    cfg = system.cfg
    image = prepare_image(args.image, cfg.resolution)
    frames = args.frames or cfg.frames
    fps = args.fps or float(opts.get("fps") or 25) / float(opts.get("skip_frames") or 1)
    device = resolve_device(args.device)
    system.to(device)
    image = image.to(device)
    videos = []
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        for _ in range(args.samples):
            videos.append(system.generator(image, frames).float().clamp(0, 1)[0].cpu())
    video = torch.cat(videos, dim=-1)  # T,3,R,N*R
    write_video(args.out, video, fps)
    print(f"wrote {args.out}: {frames} frames at {fps:g} fps, {args.samples} sample(s) of {cfg.resolution}x{cfg.resolution}")
    return 0


def run_convert(args) -> int:
    from v2v.compat import style_dvdgan as compat

    system, _ = compat.load_official(args.checkpoint, args.opt, discriminators=args.discriminators)
    paths = system.save_pretrained(args.out)
    print(f"wrote {paths['weights']} and {paths['config']}")
    return 0
