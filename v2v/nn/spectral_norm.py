"""Spectral normalization (parametrization API) and a loader for legacy spectral-norm checkpoints.

v2v modules use :func:`torch.nn.utils.parametrizations.spectral_norm`, whose state-dict layout
for a layer ``<p>`` is::

    <p>.parametrizations.weight.original   # the raw weight W
    <p>.parametrizations.weight.0._u       # left singular vector estimate, shape (out,)
    <p>.parametrizations.weight.0._v       # right singular vector estimate, shape (in*k*k,)

Official checkpoints (FOMM, pix2pixHD-era code) were written with the older
``torch.nn.utils.spectral_norm`` hook, whose layout is ``<p>.weight_orig``, ``<p>.weight_u``,
``<p>.weight_v``. Some repos roll their own (e.g. DVD-GAN ports: ``<p>.weight_bar``,
``<p>.weight_u``, ``<p>.weight_v``) with the same meaning. :func:`convert_legacy_spectral_norm`
renames such keys; :func:`load_legacy_spectral_norm` converts and loads.

Our :func:`spectral_norm` is a parametrization with exactly that state-dict layout, but its
power iteration follows the *legacy* order ``v = normalize(W^T u); u = normalize(W v)`` (torch's
parametrization updates u first, then v). So a legacy checkpoint behaves identically in both
modes: in eval mode ``W / (u . W v)`` from the stored u, v; in train mode after
``n_power_iterations`` legacy-order steps (``W`` reshaped to ``(out, -1)`` with ``dim=0``;
``dim=1`` for transposed convs). ``update_in_eval=True`` also iterates in eval mode (some
repos' own SN classes do, e.g. the DVD-GAN port used by style_dvdgan). Files written with
torch's ``parametrizations.spectral_norm`` load as they are (same keys).

Variants (``variant=`` of :func:`spectral_norm`, or :func:`set_spectral_norm_variant` on a
built network):

- ``"torch"`` (default): power iteration only in train mode, ``l2n(z) = z / max(||z||, eps)``.
- ``"dvdgan"``: the DVD-GAN port's own ``SpectralNorm`` (mt_videosynthesis
  ``dvdgan/Normalization.py``): one power iteration on EVERY forward, in train and eval mode and
  under ``no_grad``, so u and v advance with each call; ``l2n(z) = z / (||z|| + eps)``;
  ``W_used = W / (u . W v)`` with the new u, v (gradients flow through W only).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["SN_VARIANTS", "SpectralNormParam", "apply_spectral_norm", "convert_legacy_spectral_norm",
           "load_legacy_spectral_norm", "remove_spectral_norm", "set_spectral_norm_variant", "spectral_norm"]

SN_VARIANTS = ("torch", "dvdgan")

_SN_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.Linear, nn.Embedding)


class SpectralNormParam(nn.Module):
    """Parametrization ``W -> W / sigma(W)`` with legacy-order power iteration (module docstring).

    Buffers ``_u`` (rows of the reshaped weight) and ``_v`` (columns), as torch's.
    ``additive_eps``: normalize with ``z / (||z|| + eps)`` (the ``"dvdgan"`` variant) instead of
    ``z / max(||z||, eps)``.
    """

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12,
                 update_in_eval: bool = False, init_iterations: int = 15, additive_eps: bool = False):
        super().__init__()
        ndim = weight.ndim
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        self.n_power_iterations = n_power_iterations
        self.update_in_eval = update_in_eval
        self.additive_eps = additive_eps
        if ndim > 1:
            wm = self._reshape(weight.detach())
            h, w = wm.shape
            self.register_buffer("_u", F.normalize(wm.new_empty(h).normal_(0, 1), dim=0, eps=eps))
            self.register_buffer("_v", F.normalize(wm.new_empty(w).normal_(0, 1), dim=0, eps=eps))
            self._power_method(wm, init_iterations)

    def _reshape(self, weight: torch.Tensor) -> torch.Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.dim()) if d != self.dim))
        return weight.flatten(1)

    def _l2n(self, z: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.additive_eps:
            return torch.div(z, z.norm() + self.eps, out=out)
        return F.normalize(z, dim=0, eps=self.eps, out=out)

    @torch.no_grad()
    def _power_method(self, wm: torch.Tensor, n: int) -> None:
        for _ in range(n):
            self._v = self._l2n(torch.mv(wm.t(), self._u), out=self._v)
            self._u = self._l2n(torch.mv(wm, self._v), out=self._u)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        wm = self._reshape(weight)
        if self.training or self.update_in_eval:
            self._power_method(wm.detach(), self.n_power_iterations)
        u = self._u.clone(memory_format=torch.contiguous_format)
        v = self._v.clone(memory_format=torch.contiguous_format)
        sigma = torch.vdot(u, torch.mv(wm, v))
        return weight / sigma


def _check_variant(variant: str) -> None:
    if variant not in SN_VARIANTS:
        raise ValueError(f"spectral norm variant must be one of {SN_VARIANTS}, got {variant!r}")


def spectral_norm(module: nn.Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None, update_in_eval: bool = False,
                  variant: str = "torch") -> nn.Module:
    """Spectrally normalize ``module.<name>`` in place and return ``module``.

    Parametrization layout ``<name>`` -> ``parametrizations.<name>.original`` + ``.0._u`` /
    ``.0._v`` (torch's layout), legacy power-iteration order (see the module docstring).
    ``dim`` defaults to 1 for transposed convs, else 0. ``variant="dvdgan"`` selects the
    DVD-GAN port's semantics (iterate on every forward, additive eps; module docstring).

    >>> conv = spectral_norm(nn.Conv2d(3, 4, 3), variant="dvdgan").eval()
    >>> u0 = conv.parametrizations.weight[0]._u.clone()
    >>> _ = conv(torch.zeros(1, 3, 5, 5))  # eval mode: u still advances
    >>> bool((conv.parametrizations.weight[0]._u != u0).any())
    True
    """
    _check_variant(variant)
    weight = getattr(module, name)
    if dim is None:
        dim = 1 if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0
    dvd = variant == "dvdgan"
    parametrize.register_parametrization(
        module, name, SpectralNormParam(weight, n_power_iterations, dim, eps, update_in_eval or dvd,
                                        additive_eps=dvd))
    return module


def set_spectral_norm_variant(model: nn.Module, variant: str) -> nn.Module:
    """Switch every spectral norm inside ``model`` to ``variant`` (``"torch"`` or ``"dvdgan"``)."""
    _check_variant(variant)
    for m in model.modules():
        if isinstance(m, SpectralNormParam):
            m.update_in_eval = variant == "dvdgan"
            m.additive_eps = variant == "dvdgan"
    return model


def apply_spectral_norm(model: nn.Module, types: Iterable[type] = _SN_TYPES, **kwargs) -> nn.Module:
    """Apply :func:`spectral_norm` to every submodule of one of ``types`` (convs, linears) in place."""
    types = tuple(types)
    for m in list(model.modules()):
        if isinstance(m, types) and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m, **kwargs)
    return model


def remove_spectral_norm(model: nn.Module) -> nn.Module:
    """Bake the current normalized weights into plain ``weight`` parameters (for export)."""
    for m in list(model.modules()):
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return model


def convert_legacy_spectral_norm(state_dict: Mapping[str, torch.Tensor], name: str = "weight",
                                 orig_suffixes: Iterable[str] = ("_orig", "_bar")) -> dict[str, torch.Tensor]:
    """Rename legacy spectral-norm keys to the parametrization layout; other keys pass unchanged.

    ``<p>.weight_orig`` (or ``<p>.weight_bar``) -> ``<p>.parametrizations.weight.original``,
    ``<p>.weight_u`` -> ``<p>.parametrizations.weight.0._u``, ``<p>.weight_v`` ->
    ``<p>.parametrizations.weight.0._v``. A legacy entry without ``weight_v`` (torch < 1.0
    files) gets ``v = normalize(W^T u)``, one half power step (eval outputs then differ
    slightly from the old code, which solved for v). ``<p>`` may be empty (a bare layer).
    """
    out: dict[str, torch.Tensor] = {}
    done: set[str] = set()
    keys = list(state_dict)
    for k in keys:
        for suf in orig_suffixes:
            tail = name + suf
            if k == tail or k.endswith("." + tail):
                pre = k[: len(k) - len(tail)]
                u_key, v_key = pre + name + "_u", pre + name + "_v"
                if u_key not in state_dict:
                    continue
                w = state_dict[k]
                u = state_dict[u_key]
                if v_key in state_dict:
                    v = state_dict[v_key]
                else:
                    v = F.normalize(w.reshape(w.shape[0], -1).t() @ u, dim=0, eps=1e-12)
                out[pre + f"parametrizations.{name}.original"] = w
                out[pre + f"parametrizations.{name}.0._u"] = u
                out[pre + f"parametrizations.{name}.0._v"] = v
                done.update({k, u_key, v_key})
                break
    for k in keys:
        if k not in done and k not in out:
            out[k] = state_dict[k]
    return out


def load_legacy_spectral_norm(module: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True,
                              name: str = "weight"):
    """Load a state dict written with the old spectral-norm layout into ``module`` (new layout).

    ``module`` must already use :func:`spectral_norm` on the same layers. Returns the
    ``load_state_dict`` result (missing / unexpected keys).
    """
    return module.load_state_dict(convert_legacy_spectral_norm(state_dict, name), strict=strict)
