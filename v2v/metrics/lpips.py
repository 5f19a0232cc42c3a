"""LPIPS (Zhang et al. 2018): learned perceptual distance, AlexNet or VGG16 backbone.

Weights are local files only (v2v never downloads): the torchvision ImageNet backbone
(``find_weights("alexnet")`` / ``find_weights("vgg16")``) and the LPIPS v0.1 linear heads
(``find_weights("lpips_alex")`` / ``find_weights("lpips_vgg")``, the ``alex.pth`` / ``vgg.pth``
files of richzhang/PerceptualSimilarity). A missing file raises V2VError saying where to put it.
``LPIPS(net, pretrained=False)`` builds the same structure with random weights (tests only:
the values are then not LPIPS).

Structure: images [0,1] -> [-1,1] -> ScalingLayer ``(x - shift) / scale`` -> backbone taps
(after each ReLU block) -> per-channel unit normalisation -> squared difference -> 1x1 conv
head (non-negative weights, no bias) -> spatial mean -> sum over taps.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from v2v.errors import V2VError

__all__ = ["LPIPS", "lpips"]

_TAPS = {"alex": [1, 4, 7, 9, 11], "vgg": [3, 8, 15, 22, 29]}
_CHANNELS = {"alex": [64, 192, 384, 256, 256], "vgg": [64, 128, 256, 512, 512]}
_BACKBONE_WEIGHTS = {"alex": "alexnet", "vgg": "vgg16"}
_HEAD_WEIGHTS = {"alex": "lpips_alex", "vgg": "lpips_vgg"}


def _alexnet_features() -> nn.Sequential:
    """torchvision AlexNet ``features`` up to relu5 (same indices, so its keys load directly)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
    )


def _vgg16_features() -> nn.Sequential:
    """torchvision VGG16 ``features`` up to relu5_3 (same indices)."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
            c_in = v
    return nn.Sequential(*layers)


def _load_sd(path: str) -> dict:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a user-file problem
        raise V2VError(f"{path}: cannot read weights ({exc})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise V2VError(f"{path}: expected a state dict")
    return {k.removeprefix("module."): v for k, v in sd.items()}


class LPIPS(nn.Module):
    """LPIPS distance module: ``forward(a, b)`` with ``B,3,H,W`` images in [0,1] -> ``B``."""

    def __init__(self, net: str = "alex", pretrained: bool = True, backbone_path=None, heads_path=None):
        super().__init__()
        if net not in _TAPS:
            raise V2VError(f"LPIPS: unknown net '{net}' (valid: alex, vgg)")
        self.net_name = net
        self.features = _alexnet_features() if net == "alex" else _vgg16_features()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS[net])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        if pretrained:
            self.load_pretrained(backbone_path, heads_path)
        else:
            with torch.no_grad():
                for h in self.heads:  # LPIPS heads are non-negative
                    h.weight.abs_()
        self.eval()
        self.requires_grad_(False)

    def load_pretrained(self, backbone_path=None, heads_path=None) -> None:
        from v2v.weights import find_weights

        bp = find_weights(_BACKBONE_WEIGHTS[self.net_name], backbone_path)
        hp = find_weights(_HEAD_WEIGHTS[self.net_name], heads_path)
        sd = _load_sd(bp)
        fsd = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
        own = self.features.state_dict()
        missing = [k for k in own if k not in fsd]
        if missing:
            raise V2VError(f"{bp}: not a torchvision {self.net_name} checkpoint (missing features.{missing[0]})")
        self.features.load_state_dict({k: fsd[k] for k in own})
        hsd = _load_sd(hp)
        for i, head in enumerate(self.heads):
            key = next((k for k in (f"lin{i}.model.1.weight", f"lin{i}.weight", f"{i}.weight") if k in hsd), None)
            if key is None or tuple(hsd[key].shape) != tuple(head.weight.shape):
                raise V2VError(f"{hp}: LPIPS heads file lacks lin{i}.model.1.weight of shape "
                               f"{tuple(head.weight.shape)}")
            head.weight.data.copy_(hsd[key])

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        taps = set(_TAPS[self.net_name])
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in taps:
                out.append(x)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per image pair: ``a``, ``b`` ``B,3,H,W`` in [0,1] -> ``B``."""
        if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
            raise ValueError(f"LPIPS: expected two B,3,H,W images, got {tuple(a.shape)} and {tuple(b.shape)}")
        xa = ((a * 2 - 1) - self.shift) / self.scale
        xb = ((b * 2 - 1) - self.shift) / self.scale
        total = 0
        for fa, fb, head in zip(self._taps(xa), self._taps(xb), self.heads, strict=True):
            na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + head((na - nb) ** 2).mean((2, 3))
        return total.view(-1)


_CACHE: dict = {}


def lpips(a: torch.Tensor, b: torch.Tensor, net: str = "alex", backbone_path: str | os.PathLike | None = None,
          heads_path: str | os.PathLike | None = None) -> torch.Tensor:
    """LPIPS per image (``B``) for ``B,3,H,W`` images in [0,1]; the model is cached per device."""
    key = (net, str(backbone_path), str(heads_path), str(a.device))
    if key not in _CACHE:
        _CACHE[key] = LPIPS(net, True, backbone_path, heads_path).to(a.device)
    with torch.no_grad():
        return _CACHE[key](a, b)
