"""Local pretrained-weight lookup. v2v never downloads at run time.

Search order for a known weight file:
1. an explicit path passed by the caller (a CLI option or config key);
2. ``$V2V_WEIGHTS/<filename>``;
3. the torch hub cache, ``$TORCH_HOME/hub/checkpoints/<filename>`` (where torchvision would
   have put it after a download elsewhere).

A missing file raises :class:`V2VError` naming the file, where it was looked for and where to
get it, so a user can download it on a connected machine and copy it over.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from v2v.errors import V2VError

__all__ = ["KNOWN_WEIGHTS", "find_weights", "weight_status"]


@dataclass(frozen=True)
class WeightInfo:
    filename: str
    url: str
    what: str


KNOWN_WEIGHTS: dict[str, WeightInfo] = {
    "vgg19": WeightInfo("vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                        "torchvision VGG19 (ImageNet), perceptual losses"),
    "raft_large": WeightInfo("raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                             "https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                             "torchvision RAFT large, optical flow"),
    "raft_small": WeightInfo("raft_small_C_T_V2-01064c6d.pth",
                             "https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth",
                             "torchvision RAFT small, optical flow"),
    "alexnet": WeightInfo("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                          "torchvision AlexNet, LPIPS backbone"),
    "lpips_alex": WeightInfo("lpips_alex_v0.1.pth",
                             "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
                             "LPIPS linear heads (alex, v0.1); save as lpips_alex_v0.1.pth"),
    "vgg16": WeightInfo("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
                        "torchvision VGG16 (ImageNet), LPIPS-vgg backbone"),
    "lpips_vgg": WeightInfo("lpips_vgg_v0.1.pth",
                            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
                            "LPIPS linear heads (vgg, v0.1); save as lpips_vgg_v0.1.pth"),
    "i3d": WeightInfo("i3d_torchscript.pt", "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt",
                      "I3D (Kinetics-400) TorchScript, FVD"),
}


def _candidates(filename: str) -> list[str]:
    out = []
    env = os.environ.get("V2V_WEIGHTS")
    if env:
        out.append(os.path.join(env, filename))
    try:
        import torch

        out.append(os.path.join(torch.hub.get_dir(), "checkpoints", filename))
    except Exception:  # torch missing is not this function's problem
        pass
    return out


def find_weights(name: str, path: str | os.PathLike | None = None) -> str:
    """Return a local path for weights ``name`` (a key of KNOWN_WEIGHTS) or raise V2VError."""
    if name not in KNOWN_WEIGHTS:
        raise V2VError(f"unknown weights '{name}' (known: {', '.join(KNOWN_WEIGHTS)})")
    info = KNOWN_WEIGHTS[name]
    if path:
        path = os.fspath(path)
        if os.path.isfile(path):
            return path
        raise V2VError(f"{info.what}: weights file not found: {path}")
    tried = _candidates(info.filename)
    for c in tried:
        if os.path.isfile(c):
            return c
    raise V2VError(
        f"{info.what}: weights '{info.filename}' not found (looked in: {', '.join(tried) or 'nowhere'}); "
        f"download {info.url} on a connected machine and put it in $V2V_WEIGHTS or the torch hub "
        f"checkpoints folder, or pass its path explicitly"
    )


def weight_status() -> dict[str, tuple[bool, str]]:
    """name -> (found, path or where it was looked for)."""
    out = {}
    for name, info in KNOWN_WEIGHTS.items():
        tried = _candidates(info.filename)
        hit = next((c for c in tried if os.path.isfile(c)), None)
        out[name] = (True, hit) if hit else (False, info.filename)
    return out
