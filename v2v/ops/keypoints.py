"""Keypoint ops (FOMM semantics): gaussians, soft-argmax, jacobians, sparse motions, random TPS.

Conventions: keypoints are ``B,K,2`` in normalized [-1, 1] coordinates, x first, on a grid with
``align_corners=True`` semantics (-1/+1 are the centres of the corner pixels; FOMM's
``make_coordinate_grid``). Jacobians are ``B,K,2,2`` matrices acting on (x, y) column vectors:
``out_x = J[0,0] x + J[0,1] y``, ``out_y = J[1,0] x + J[1,1] y``. Heatmaps are ``B,K,h,w``.
Every function keeps the official operation order so results match first-order-model bit for
bit in float32 (checked against ``fixtures/fomm/cases.npz``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._check import check_same_shape, check_shape
from .grid import make_grid

__all__ = [
    "RandomTPS",
    "heatmap_representation",
    "heatmap_softargmax",
    "jacobian_from_heatmap",
    "kp_to_gaussian",
    "random_tps",
    "softmax_heatmap",
    "sparse_motions",
]


def kp_to_gaussian(kp: torch.Tensor, spatial_size, kp_variance: float) -> torch.Tensor:
    """Gaussian-like map per keypoint (FOMM ``kp2gaussian``).

    ``kp``: ``(..., K, 2)`` normalized (x, y); ``spatial_size``: ``(h, w)``. Returns
    ``(..., K, h, w)`` with ``exp(-0.5 * |grid - kp|^2 / kp_variance)`` where ``grid`` is the
    ``align_corners=True`` normalized grid of size ``(h, w)``. Peak value 1 (not normalized).

    Args:
        kp: ``(..., K, 2)`` keypoints, normalized [-1, 1], x first.
        spatial_size: ``(h, w)`` of the maps.
        kp_variance: variance in normalized units squared (FOMM: 0.01).

    Returns:
        ``(..., K, h, w)`` maps in (0, 1].

    Example:
        >>> kp_to_gaussian(torch.zeros(1, 1, 2), (3, 3), 0.01)[0, 0, 1, 1]
        tensor(1.)
    """
    check_shape(kp, "*,K,2", "kp_to_gaussian: kp")
    h, w = int(spatial_size[0]), int(spatial_size[1])
    grid = make_grid(h, w, align_corners=True, device=kp.device, dtype=kp.dtype)
    lead = kp.shape[:-1]
    grid = grid.view((1,) * len(lead) + grid.shape)
    mean = kp.view(*lead, 1, 1, 2)
    diff = grid - mean
    return torch.exp(-0.5 * (diff**2).sum(-1) / kp_variance)


def softmax_heatmap(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax of ``logits / temperature`` over the flattened spatial positions of each channel.

    (FOMM's keypoint detector, temperature 0.1.)

    Args:
        logits: ``B,K,h,w`` raw scores.
        temperature: softmax temperature (> 0).

    Returns:
        ``B,K,h,w`` heatmap; every ``[b, k]`` map sums to 1.

    Example:
        >>> softmax_heatmap(torch.zeros(1, 1, 2, 2))[0, 0]
        tensor([[0.2500, 0.2500],
                [0.2500, 0.2500]])
    """
    check_shape(logits, "B,K,h,w", "softmax_heatmap: logits")
    shape = logits.shape
    flat = logits.view(shape[0], shape[1], -1)
    return F.softmax(flat / temperature, dim=2).view(*shape)


def heatmap_softargmax(heatmap: torch.Tensor) -> torch.Tensor:
    """Expected position of each (already softmaxed) heatmap: ``sum(heatmap * grid)``.

    FOMM ``gaussian2kp``.

    Args:
        heatmap: ``B,K,h,w``, each map summing to 1.

    Returns:
        ``B,K,2`` keypoints (x, y), normalized coordinates of the heatmap's own
        ``align_corners=True`` grid.

    Example:
        >>> hm = torch.zeros(1, 1, 3, 3); hm[0, 0, 0, 2] = 1.0   # top-right corner
        >>> heatmap_softargmax(hm)
        tensor([[[ 1., -1.]]])
    """
    check_shape(heatmap, "B,K,h,w", "heatmap_softargmax: heatmap")
    h, w = heatmap.shape[2:]
    grid = make_grid(h, w, align_corners=True, device=heatmap.device, dtype=heatmap.dtype)
    return (heatmap.unsqueeze(-1) * grid.view(1, 1, h, w, 2)).sum(dim=(2, 3))


def jacobian_from_heatmap(heatmap: torch.Tensor, jac_map: torch.Tensor) -> torch.Tensor:
    """Heatmap-weighted sum of a jacobian map (FOMM keypoint detector).

    ``heatmap``: ``B,K,h,w`` (softmaxed). ``jac_map``: ``B,4*K,h,w`` (one map per keypoint) or
    ``B,4,h,w`` (a single shared map); channel ``4m + c`` holds ``c = (j00, j01, j10, j11)``.

    Args:
        heatmap: ``B,K,h,w`` (softmaxed).
        jac_map: ``B,4*K,h,w`` or ``B,4,h,w``.

    Returns:
        ``B,K,2,2`` (row-major ``[[j00, j01], [j10, j11]]``).

    Example:
        >>> hm = torch.full((1, 2, 2, 2), 0.25)
        >>> jacobian_from_heatmap(hm, torch.ones(1, 4, 2, 2)).shape
        torch.Size([1, 2, 2, 2])
    """
    check_shape(heatmap, "B,K,h,w", "jacobian_from_heatmap: heatmap")
    b, k, h, w = heatmap.shape
    if jac_map.shape[1] % 4:
        raise ValueError(f"jacobian_from_heatmap: jac_map channels must be 4*M, got {jac_map.shape[1]}")
    m = jac_map.shape[1] // 4
    if m not in (1, k):
        raise ValueError(f"jacobian_from_heatmap: jac_map has {m} maps, expected 1 or K={k}")
    jac = jac_map.reshape(b, m, 4, h, w)
    jac = heatmap.unsqueeze(2) * jac
    jac = jac.view(b, k, 4, -1).sum(dim=-1)
    return jac.view(b, k, 2, 2)


def heatmap_representation(
    kp_driving: torch.Tensor, kp_source: torch.Tensor, spatial_size, kp_variance: float
):
    """FOMM dense-motion heatmap input ``B,K+1,1,h,w``: channel 0 zeros (background), channel k
    ``gaussian(kp_driving_k) - gaussian(kp_source_k)``.

    Args:
        kp_driving, kp_source: ``B,K,2`` normalized (x, y).
        spatial_size: ``(h, w)``.
        kp_variance: as in :func:`kp_to_gaussian`.

    Returns:
        ``B,K+1,1,h,w``.

    Example:
        >>> heatmap_representation(torch.zeros(2, 5, 2), torch.zeros(2, 5, 2), (4, 4), 0.01).shape
        torch.Size([2, 6, 1, 4, 4])
    """
    check_same_shape(kp_driving, kp_source, "heatmap_representation: kp_driving, kp_source")
    g = kp_to_gaussian(kp_driving, spatial_size, kp_variance) - kp_to_gaussian(
        kp_source, spatial_size, kp_variance
    )
    zeros = torch.zeros(g.shape[0], 1, *g.shape[2:], dtype=g.dtype, device=g.device)
    return torch.cat([zeros, g], dim=1).unsqueeze(2)


def sparse_motions(
    kp_source: torch.Tensor,
    kp_driving: torch.Tensor,
    spatial_size,
    jac_source: torch.Tensor | None = None,
    jac_driving: torch.Tensor | None = None,
) -> torch.Tensor:
    """FOMM sparse motions ``T_{s<-d}(z)`` as sampling grids ``B,K+1,h,w,2`` (x, y normalized).

    Index 0 is the identity grid (background); index k is
    ``J_k (z - kp_driving_k) + kp_source_k`` with ``J_k = jac_source_k @ inverse(jac_driving_k)``
    (or the identity when jacobians are not given). ``z`` runs over the ``align_corners=True``
    grid of ``spatial_size = (h, w)``. Keypoints ``B,K,2``, jacobians ``B,K,2,2``. The grids are
    meant for ``grid_sample(..., align_corners=True)`` (:func:`v2v.ops.warp.sample`).

    Args:
        kp_source, kp_driving: ``B,K,2`` normalized (x, y).
        spatial_size: ``(h, w)`` of the grids.
        jac_source, jac_driving: ``B,K,2,2`` or None (translation only).

    Returns:
        ``B,K+1,h,w,2`` sampling grids.

    Example:
        >>> g = sparse_motions(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), (4, 4))
        >>> g.shape, bool((g[:, 1] == g[:, 0]).all())   # equal keypoints: identity motions
        (torch.Size([1, 4, 4, 4, 2]), True)
    """
    check_same_shape(kp_source, kp_driving, "sparse_motions: kp_source, kp_driving")
    b, k = kp_source.shape[:2]
    h, w = int(spatial_size[0]), int(spatial_size[1])
    identity = make_grid(h, w, align_corners=True, device=kp_source.device, dtype=kp_source.dtype)
    identity = identity.view(1, 1, h, w, 2)
    coords = identity - kp_driving.view(b, k, 1, 1, 2)
    if jac_driving is not None:
        if jac_source is None:
            raise ValueError("sparse_motions: jac_source is required when jac_driving is given")
        jac = torch.matmul(jac_source, torch.inverse(jac_driving))
        jac = jac.unsqueeze(-3).unsqueeze(-3).repeat(1, 1, h, w, 1, 1)
        coords = torch.matmul(jac, coords.unsqueeze(-1)).squeeze(-1)
    driving_to_source = coords + kp_source.view(b, k, 1, 1, 2)
    return torch.cat([identity.repeat(b, 1, 1, 1, 1), driving_to_source], dim=1)


class RandomTPS:
    """Random affine + thin-plate-spline warp for the FOMM equivariance losses (``Transform``).

    ``theta = I(2x3) + N(0, sigma_affine)`` per sample; with ``points_tps``/``sigma_tps`` also
    ``points_tps x points_tps`` control points on the normalized grid with N(0, sigma_tps)
    weights and FOMM's radial basis ``r^2 log(r + 1e-6)`` where ``r`` is the **L1** distance
    (as in the official code). All coordinates are normalized (x, y), ``align_corners=True``.

    Args:
        batch: number of independent transforms ``B``.
        sigma_affine, sigma_tps, points_tps: FOMM ``transform_params``.
        generator: optional ``torch.Generator`` for reproducible draws.
        device, dtype: where the parameters live.

    Example:
        >>> t = RandomTPS(1, sigma_affine=0.05, sigma_tps=0.005, points_tps=5)
        >>> t.transform_frame(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(
        self,
        batch: int,
        sigma_affine: float,
        sigma_tps: float | None = None,
        points_tps: int | None = None,
        generator: torch.Generator | None = None,
        device=None,
        dtype=torch.float32,
    ):
        self.bs = int(batch)
        noise = torch.randn(self.bs, 2, 3, generator=generator, dtype=dtype) * sigma_affine
        self.theta = (noise + torch.eye(2, 3, dtype=dtype).view(1, 2, 3)).to(device)
        self.tps = sigma_tps is not None and points_tps is not None
        if self.tps:
            n = int(points_tps)
            self.control_points = (
                make_grid(n, n, align_corners=True, dtype=dtype).view(1, n * n, 2).to(device)
            )
            params = torch.randn(self.bs, 1, n * n, generator=generator, dtype=dtype) * sigma_tps
            self.control_params = params.to(device)

    @classmethod
    def from_params(cls, theta: torch.Tensor, control_points=None, control_params=None) -> RandomTPS:
        """Build from explicit parameters: ``theta`` ``B,2,3``, control points ``(N,2)`` or
        ``1,N,2`` and weights ``B,1,N`` (None for affine only)."""
        obj = cls.__new__(cls)
        obj.bs = theta.shape[0]
        obj.theta = theta
        obj.tps = control_points is not None
        if obj.tps:
            obj.control_points = control_points.reshape(1, -1, 2)
            obj.control_params = control_params.reshape(obj.bs, 1, -1)
        return obj

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Map normalized points ``B,N,2`` (or ``1,N,2``, broadcast) through the transform -> ``B,N,2``."""
        theta = self.theta.to(coordinates.dtype).unsqueeze(1)
        out = torch.matmul(theta[:, :, :, :2], coordinates.unsqueeze(-1)) + theta[:, :, :, 2:]
        out = out.squeeze(-1)
        if self.tps:
            cp = self.control_points.to(coordinates.dtype)
            params = self.control_params.to(coordinates.dtype)
            dist = coordinates.view(coordinates.shape[0], -1, 1, 2) - cp.view(1, 1, -1, 2)
            dist = torch.abs(dist).sum(-1)
            res = dist**2
            res = res * torch.log(dist + 1e-6)
            res = res * params
            res = res.sum(dim=2).view(self.bs, coordinates.shape[1], 1)
            out = out + res
        return out

    def transform_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """Resample ``frame`` (``B,C,H,W``) at the warped grid: ``out(z) = frame(T(z))``
        (grid_sample, bilinear, reflection padding, ``align_corners=True``)."""
        h, w = frame.shape[2:]
        grid = make_grid(h, w, align_corners=True, device=frame.device, dtype=frame.dtype).view(1, h * w, 2)
        grid = self.warp_coordinates(grid).view(self.bs, h, w, 2)
        return F.grid_sample(frame, grid, padding_mode="reflection", align_corners=True)

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Jacobian ``B,N,2,2`` of :meth:`warp_coordinates` at ``coordinates`` (``B,N,2``), via autograd.

        ``coordinates`` must require grad (as FOMM's keypoints do during training); if it does
        not, a differentiable copy is used. The graph is kept (``create_graph=True``).
        """
        if not coordinates.requires_grad:
            coordinates = coordinates.detach().requires_grad_(True)
        new = self.warp_coordinates(coordinates)
        gx = torch.autograd.grad(new[..., 0].sum(), coordinates, create_graph=True)[0]
        gy = torch.autograd.grad(new[..., 1].sum(), coordinates, create_graph=True)[0]
        return torch.cat([gx.unsqueeze(-2), gy.unsqueeze(-2)], dim=-2)


def random_tps(batch: int, sigma_affine: float, sigma_tps=None, points_tps=None, generator=None, device=None):
    """Shorthand for :class:`RandomTPS` (FOMM ``Transform(bs, **transform_params)``).

    Args:
        batch: number of transforms.
        sigma_affine, sigma_tps, points_tps: FOMM ``transform_params``.
        generator, device: as in :class:`RandomTPS`.

    Returns:
        a :class:`RandomTPS`.

    Example:
        >>> t = random_tps(2, 0.0)       # zero noise: the identity transform
        >>> t.warp_coordinates(torch.zeros(1, 1, 2))
        tensor([[[0., 0.]],
        <BLANKLINE>
                [[0., 0.]]])
    """
    return RandomTPS(batch, sigma_affine, sigma_tps, points_tps, generator=generator, device=device)
