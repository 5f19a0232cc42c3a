"""MoCoGAN-HD commands: ``generate mocogan-hd``, ``generate mocogan-hd-pca``, ``convert mocogan-hd``.

``v2v generate mocogan-hd --config CFG --checkpoint CKPT --image-generator G.pt --pca DIR
--frames T --num-videos N --out DIR_OR_MP4 [--interpolate] [--seed S] [--truncation PSI] [--noise]``

- CFG: a v2v YAML (``model:`` section, e.g. ``configs/mocogan_hd/*.yaml``) or the official
  ``opt.txt`` / ``options.json``.
- CKPT: our safetensors (training checkpoint: ``motion.*`` keys, ``--ema`` for the EMA copy; or a
  ``convert`` output) or the official ``modelR_epoch_<N>.pth``.
- G.pt: rosinality StyleGAN2 file (``g_ema``) or the checkpoint ``v2v train`` writes for the
  ``stylegan2`` system; default: the generator stored in CKPT (convert output), else
  ``model.image_generator``.
- DIR: ``pca_comp.npy`` / ``pca_stdev.npy`` (default: the basis stored in CKPT, else ``model.pca_dir``).
- ``--frames`` may exceed the training length: the LSTM is unrolled. ``--interpolate`` writes
  ``2T-1`` frames (midpoint latents, official ``--interpolation``).

Output: an ``.mp4``/``.gif``/... path (N > 1 adds ``_000``, ``_001`` ... to the stem) or a folder
(``video_000.mp4`` ...). Everything is generated before anything is written.
"""
from __future__ import annotations

import logging
from pathlib import Path

from v2v.errors import V2VError

log = logging.getLogger(__name__)

_VIDEO_EXT = (".mp4", ".gif", ".webm", ".mov", ".mkv", ".avi")


def register(cli) -> None:
    p = cli.group_command("generate", "mocogan-hd", help="videos from a MoCoGAN-HD motion generator + StyleGAN2",
                          aliases=["mocogan_hd"])
    p.add_argument("--config", required=True, help="v2v YAML (model: section) or official opt.txt / options.json")
    p.add_argument("--checkpoint", required=True, help="v2v .safetensors or official modelR_epoch_<N>.pth")
    p.add_argument("--image-generator", default=None, help="rosinality StyleGAN2 .pt (g_ema) or v2v stylegan2 checkpoint")
    p.add_argument("--pca", default=None, help="folder with pca_comp.npy / pca_stdev.npy")
    p.add_argument("--frames", type=int, default=None, help="frames per video (default: n_frames_G)")
    p.add_argument("--num-videos", type=int, default=1)
    p.add_argument("--out", required=True, help="output video file (.mp4/.gif/...) or folder")
    p.add_argument("--interpolate", action="store_true", help="insert midpoint latents (2T-1 frames)")
    p.add_argument("--truncation", type=float, default=1.0, help="truncation psi (1 = none, the official default)")
    p.add_argument("--noise", action="store_true", help="per-video noise maps (evaluate.py's '_noise' videos)")
    p.add_argument("--ema", action="store_true", help="use the EMA motion generator of a training checkpoint")
    p.add_argument("--fps", type=float, default=10.0)
    p.set_defaults(func=run_generate)

    p = cli.group_command("generate", "mocogan-hd-pca", help="PCA stats of a StyleGAN2 w space (official recipe)",
                          aliases=["mocogan_hd_pca"])
    p.add_argument("--image-generator", required=True)
    p.add_argument("--samples", type=int, default=2000, help="mapped samples (official: 4 x 500 ... )")
    p.add_argument("--out", required=True, help="folder for pca_comp.npy, pca_stdev.npy, pca_var_ratio.npy, ...")
    p.set_defaults(func=run_pca)

    p = cli.group_command("convert", "mocogan-hd", help="official MoCoGAN-HD run -> v2v safetensors",
                          aliases=["mocogan_hd"])
    p.add_argument("checkpoint", help="official modelR_epoch_<N>.pth or the run folder")
    p.add_argument("--opt", default=None, help="official opt.txt / options.json (default: found beside the checkpoint)")
    p.add_argument("--image-generator", default=None, help="default: the options' --img_g_weights")
    p.add_argument("--pca", default=None, help="default: the options' --save_pca_path")
    p.add_argument("--out", required=True, help="output folder (mocogan-hd.safetensors + mocogan-hd.yaml)")
    p.set_defaults(func=run_convert)

    p = cli.group_command("convert", "stylegan2", help="v2v stylegan2 training checkpoint -> rosinality .pt "
                          "({'g', 'd', 'g_ema', 'latent_avg'}) for the official MoCoGAN-HD / stylegan2-pytorch code")
    p.add_argument("checkpoint", help="v2v .safetensors written by `v2v train` for the stylegan2 system")
    p.add_argument("--out", required=True, help="output .pt file")
    p.set_defaults(func=run_convert_stylegan2)


def _load_config(path: str):
    from v2v.compat.mocogan_hd import config_from_official, read_options_file
    from v2v.models.mocogan_hd import MoCoGANHDConfig

    p = Path(path)
    if not p.exists():
        raise V2VError(f"config not found: {p}")
    if p.suffix in (".yaml", ".yml"):
        from v2v.config import from_dict, load_yaml

        data = load_yaml(p)
        return from_dict(MoCoGANHDConfig, data.get("model", data), "model")
    return config_from_official(read_options_file(p))


def _is_torch_pickle(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def build_generator(config: str, checkpoint: str, image_generator: str | None = None, pca: str | None = None,
                    ema: bool = False):
    """(system, cfg) ready for :meth:`MoCoGANHDSystem.generate` from the CLI's files."""
    import torch

    from v2v.models.mocogan_hd import MoCoGANHDSystem, load_pca
    from v2v.nn.stylegan2 import generator_config_from_state_dict, read_rosinality
    from v2v.weights_io import check_state_dict, read_weights

    cfg = _load_config(config)
    if not Path(checkpoint).is_file():
        raise V2VError(f"checkpoint not found: {checkpoint}")
    official = _is_torch_pickle(checkpoint)
    tensors: dict = {}
    if not official:
        tensors, _ = read_weights(checkpoint)
        if ema:
            em = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.motion.")}
            if not em:
                raise V2VError(f"{checkpoint} has no EMA weights ('ema.motion.*'); drop --ema")
            tensors.update(em)
    g_sd, latent_avg = None, None
    g_path = image_generator or (None if any(k.startswith("generator.") for k in tensors) else cfg.image_generator)
    if g_path:
        ck = read_rosinality(g_path)
        g_sd, latent_avg = ck["g_ema"], ck.get("latent_avg")
    else:
        g_sd = {k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")}
        if not g_sd:
            raise V2VError("no image generator: pass --image-generator G.pt (or set model.image_generator)")
        g_path = checkpoint
    got = generator_config_from_state_dict(g_sd)
    if got["size"] != cfg.style_gan_size or got["style_dim"] != cfg.latent_dimension:
        raise V2VError(f"{g_path}: image generator is {got['size']}px with latent dimension {got['style_dim']}, "
                       f"the config expects style_gan_size {cfg.style_gan_size} and latent_dimension "
                       f"{cfg.latent_dimension}")
    cfg.stylegan_channels = got["channels"]
    cfg.image_generator = cfg.pca_dir = None
    sysm = MoCoGANHDSystem.from_config(cfg, inference=True)
    from v2v.nn.stylegan2 import load_generator_state_dict

    load_generator_state_dict(sysm.generator, g_sd, str(g_path))
    if torch.is_tensor(latent_avg):
        sysm.register_buffer("latent_avg", latent_avg.reshape(1, -1).float(), persistent=False)
    # motion generator
    if official:
        from v2v.compat.common import official_state_dict

        msd = official_state_dict(checkpoint, "motion generator")
    else:
        msd = {k[len("motion."):]: v for k, v in tensors.items() if k.startswith("motion.")}
        if not msd:
            raise V2VError(f"{checkpoint}: no 'motion.*' weights (not a mocogan-hd checkpoint?)")
    expected = sysm.motion.state_dict()
    has_pca = "pca_comp" in msd
    if not has_pca:
        expected = {k: v for k, v in expected.items() if not k.startswith("pca_")}
    check_state_dict({f"motion.{k}": v for k, v in expected.items()}, {f"motion.{k}": v for k, v in msd.items()},
                     checkpoint)
    sysm.motion.load_state_dict(msd, strict=has_pca)
    pca = pca or (None if has_pca else _official_pca_dir(config))
    if pca:
        sysm.motion.set_pca(*load_pca(pca, cfg.n_pca, cfg.latent_dimension))
    elif not has_pca:
        raise V2VError("no PCA basis: pass --pca DIR (pca_comp.npy / pca_stdev.npy)")
    return sysm.eval(), cfg


def _official_pca_dir(config: str) -> str | None:
    if Path(config).suffix in (".yaml", ".yml"):
        from v2v.config import load_yaml

        return (load_yaml(config).get("model") or {}).get("pca_dir")
    from v2v.compat.mocogan_hd import read_options_file

    rel = read_options_file(config).get("save_pca_path")
    if rel is None:
        return None
    p = Path(config).parent / str(rel)
    return str(p) if p.is_dir() else str(rel)


def _out_paths(out: str, n: int) -> list[Path]:
    p = Path(out)
    if p.suffix.lower() in _VIDEO_EXT:
        if n == 1:
            return [p]
        return [p.with_name(f"{p.stem}_{i:03d}{p.suffix}") for i in range(n)]
    return [p / f"video_{i:03d}.mp4" for i in range(n)]


def run_generate(args) -> int:
    import torch

    from v2v.data.video import write_video
    from v2v.device import resolve_device

    if args.num_videos < 1:
        raise V2VError(f"--num-videos must be >= 1 (got {args.num_videos})")
    if args.frames is not None and args.frames < 1:
        raise V2VError(f"--frames must be >= 1 (got {args.frames})")
    if not 0 < args.truncation <= 1:
        raise V2VError(f"--truncation must be in (0, 1] (got {args.truncation})")
    device = resolve_device(getattr(args, "device", None))
    sysm, cfg = build_generator(args.config, args.checkpoint, args.image_generator, args.pca, args.ema)
    sysm.to(device)
    t = args.frames or cfg.n_frames_G
    gen = torch.Generator().manual_seed(args.seed)
    videos = []
    for _ in range(args.num_videos):
        z = torch.randn(1, cfg.latent_dimension, generator=gen).to(device)
        v = sysm.generate(z, t, use_noise=args.noise, interpolate=args.interpolate, truncation=args.truncation,
                          generator=gen)
        videos.append(((v[0].clamp(-1, 1) + 1) / 2).cpu())
    paths = _out_paths(args.out, args.num_videos)
    if paths[0].parent:
        paths[0].parent.mkdir(parents=True, exist_ok=True)
    for p, v in zip(paths, videos):
        write_video(p, v, args.fps)
    print(f"wrote {len(paths)} video(s) of {videos[0].shape[0]} frames at {videos[0].shape[-1]}px: "
          f"{paths[0]}{' ...' if len(paths) > 1 else ''}")
    return 0


def run_pca(args) -> int:
    import numpy as np

    from v2v.models.mocogan_hd import fit_pca
    from v2v.nn.stylegan2 import (
        StyleGAN2Generator,
        generator_config_from_state_dict,
        load_generator_state_dict,
        read_rosinality,
    )
    from v2v.utils import atomic_path

    sd = read_rosinality(args.image_generator)["g_ema"]
    g = StyleGAN2Generator(**generator_config_from_state_dict(sd))
    load_generator_state_dict(g, sd, args.image_generator)
    st = fit_pca(g.style, g.style_dim, args.samples, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k, v in st.items():
        with atomic_path(out / f"{k}.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, v)
    print(f"wrote PCA stats of {args.samples} mapped samples (D={g.style_dim}) to {out}")
    return 0


def run_convert(args) -> int:
    import dataclasses

    import yaml

    from v2v.compat.mocogan_hd import build_official
    from v2v.utils import atomic_write
    from v2v.weights_io import save_weights

    sysm, opts = build_official(args.checkpoint, args.opt, image_generator=args.image_generator, pca_dir=args.pca)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.asdict(sysm.cfg)
    save_weights(sysm, out / "mocogan-hd.safetensors", {"system": "mocogan-hd", "model": cfg})
    with atomic_write(out / "mocogan-hd.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump({"system": "mocogan-hd", "model": cfg}, f, sort_keys=False)
    print(f"wrote {out / 'mocogan-hd.safetensors'} and {out / 'mocogan-hd.yaml'} (from {opts['_paths']['modelR']})")
    return 0


def run_convert_stylegan2(args) -> int:
    import torch

    from v2v.nn.stylegan2 import (
        StyleGAN2Generator,
        generator_config_from_state_dict,
        load_generator_state_dict,
        read_rosinality,
    )
    from v2v.utils import atomic_path

    ck = read_rosinality(args.checkpoint)
    out = {k: ck[k] for k in ("g", "d", "g_ema") if k in ck}
    g = StyleGAN2Generator(**generator_config_from_state_dict(ck["g_ema"]))
    load_generator_state_dict(g, ck["g_ema"], args.checkpoint, strict=True)
    out["latent_avg"] = g.mean_latent(4096, torch.Generator().manual_seed(0))[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        torch.save(out, tmp)
    print(f"wrote {args.out} ({', '.join(out)}; {g.size}px, latent {g.style_dim})")
    return 0
