"""Img2Vid commands: ``generate img2vid``, ``convert img2vid`` (``parity img2vid`` is the registry's generic one)."""
from __future__ import annotations

from v2v.errors import V2VError


def _have(cli, group: str, name: str) -> bool:
    sub = cli._groups.get(group)
    return sub is not None and name in sub.choices


def register(cli):
    if not _have(cli, "convert", "img2vid"):
        p = cli.group_command("convert", "img2vid", help="official seg2vid NNNNNN_model.pth.tar + opt.json -> v2v safetensors")
        p.add_argument("checkpoint", help="official checkpoint ({'vae', 'optimizer'})")
        p.add_argument("--opt", default=None, help="opt.json (parse_opts values; fixture files add vae_ctor / widths)")
        p.add_argument("--out", required=True, help="output folder (img2vid.safetensors + img2vid.yaml + vgg19.safetensors)")
        p.set_defaults(func=run_convert)


def run_convert(args) -> int:
    import os

    from v2v.compat.img2vid import load_official_system, read_official, vgg_state_dict
    from v2v.config import save_yaml, to_dict
    from v2v.weights_io import save_weights

    system, options = load_official_system(args.checkpoint, args.opt, inference=True)
    os.makedirs(args.out, exist_ok=True)
    cfg = to_dict(system.cfg)
    save_weights(system, os.path.join(args.out, "img2vid.safetensors"),
                 {"system": "img2vid", "config": cfg, "source": os.path.basename(args.checkpoint)})
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
