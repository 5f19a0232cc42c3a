"""Fréchet distance between Gaussians and streaming feature statistics (FID, FVD share it).

``FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` computed in float64 with
``scipy.linalg.sqrtm``; as in pytorch-fid, ``eps * I`` is added to both covariances only when
the square root comes out non-finite, and a tiny imaginary part is dropped.
"""
from __future__ import annotations

import numpy as np

from v2v.errors import V2VError

__all__ = ["FeatureStats", "frechet_distance"]


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (numpy or tensors)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise V2VError(f"frechet_distance: mismatched statistics: mu {mu1.shape} vs {mu2.shape}, "
                       f"sigma {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    import warnings

    with warnings.catch_warnings():
        # singular covariances (fewer samples than dimensions) are expected for small sets
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1.dot(s2))
        if not np.isfinite(covmean).all():
            off = np.eye(s1.shape[0]) * eps
            covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


class FeatureStats:
    """Streaming mean/covariance of feature vectors (float64 sums; O(D^2) memory).

    ``update(feats)`` takes ``N,D`` (numpy or tensor); ``mean_cov()`` returns ``(mu, sigma)``
    with the unbiased covariance (``np.cov`` convention, ``ddof=1``).
    """

    def __init__(self, dim: int | None = None):
        self.dim = dim
        self.n = 0
        self._sum = None
        self._outer = None

    def update(self, feats) -> None:
        try:
            import torch

            if isinstance(feats, torch.Tensor):
                feats = feats.detach().cpu().double().numpy()
        except ImportError:
            pass
        f = np.asarray(feats, np.float64)
        if f.ndim != 2:
            raise ValueError(f"FeatureStats.update: expected N,D features, got shape {f.shape}")
        if self.dim is None:
            self.dim = f.shape[1]
        if f.shape[1] != self.dim:
            raise ValueError(f"FeatureStats.update: feature dim {f.shape[1]} != {self.dim}")
        if self._sum is None:
            self._sum = np.zeros(self.dim)
            self._outer = np.zeros((self.dim, self.dim))
        self.n += f.shape[0]
        self._sum += f.sum(0)
        self._outer += f.T @ f

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise V2VError(f"need at least 2 feature vectors for a covariance, got {self.n}")
        mu = self._sum / self.n
        sigma = (self._outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, sigma

    def save(self, path) -> None:
        """Save ``mu``, ``sigma``, ``n`` to an .npz file (atomic)."""
        from v2v.utils import atomic_path

        mu, sigma = self.mean_cov()
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, mu=mu, sigma=sigma, n=self.n)

    @staticmethod
    def load_mean_cov(path) -> tuple[np.ndarray, np.ndarray]:
        """Read ``(mu, sigma)`` from an .npz written by :meth:`save` (or pytorch-fid's format)."""
        try:
            with np.load(path) as d:
                return d["mu"], d["sigma"]
        except (OSError, KeyError, ValueError) as exc:
            raise V2VError(f"{path}: not a statistics file with 'mu' and 'sigma' ({exc})") from None
