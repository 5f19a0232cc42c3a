"""Optical-flow estimation behind one interface: OpenCV DIS / Farneback (CPU) and torchvision RAFT.

Direction (read this): ``estimate_flow(a, b)`` returns the flow **from a to b** on the pixel grid
of ``a``, i.e. the *backward* flow that warps ``b`` onto ``a``::

    warp(b, estimate_flow(a, b)) ≈ a            (out(p) = b(p + flow(p)))

This is what vid2vid's flow loss needs: with ``a = frame_t`` and ``b = frame_{t-1}`` the result
warps the previous frame onto the current one. Flow is ``B,2,H,W`` float32 in pixels, channel 0
= x (right), channel 1 = y (down).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from v2v.errors import V2VError, unknown_key_message

from .flow import resize_flow

__all__ = ["FLOW_METHODS", "estimate_flow", "load_raft"]

FLOW_METHODS = ("dis", "farneback", "raft", "raft_small")
_RAFT_MIN = 128

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _to_tensor(x, name: str) -> torch.Tensor:
    """Accept ``B,3,H,W``/``3,H,W`` float tensors in [0,1] or ``H,W,3`` uint8/float numpy (RGB)."""
    if isinstance(x, np.ndarray):
        arr = x
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (1, 3):
            raise ValueError(f"estimate_flow: numpy {name} must be H,W,3 (RGB), got shape {arr.shape}")
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None]
        return t.float() / 255.0 if arr.dtype == np.uint8 else t.float()
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"estimate_flow: {name} must be a tensor or numpy array, got {type(x).__name__}")
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"estimate_flow: {name} must be B,3,H,W in [0,1], got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x


def _gray_u8(img: torch.Tensor) -> list:
    """B,3,H,W [0,1] -> list of H,W uint8 grayscale arrays (BT.601 like cv2.COLOR_RGB2GRAY)."""
    arr = (img.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY) for a in arr]


def _cv2_flow(a: torch.Tensor, b: torch.Tensor, method: str, kw: dict) -> torch.Tensor:
    ga, gb = _gray_u8(a), _gray_u8(b)
    out = []
    if method == "dis":
        preset = kw.pop("preset", "medium")
        if preset not in _DIS_PRESETS:
            raise V2VError(unknown_key_message("DIS preset", preset, _DIS_PRESETS))
        dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
        for k, v in kw.items():  # e.g. finest_scale=0, variational_refinement_iterations=5
            setter = "set" + "".join(p.capitalize() for p in k.split("_"))
            if not hasattr(dis, setter):
                raise V2VError(f"unknown DIS option '{k}' (cv2.DISOpticalFlow has no {setter})")
            getattr(dis, setter)(v)
        for x, y in zip(ga, gb):
            out.append(dis.calc(x, y, None))
    else:
        params = {"pyr_scale": 0.5, "levels": 4, "winsize": 15, "iterations": 3, "poly_n": 5,
                  "poly_sigma": 1.2, "flags": 0}  # fmt: skip
        bad = set(kw) - set(params)
        if bad:
            raise V2VError(unknown_key_message("farneback option", min(bad), params))
        params.update(kw)
        for x, y in zip(ga, gb):
            out.append(cv2.calcOpticalFlowFarneback(x, y, None, **params))
    flow = torch.from_numpy(np.stack(out, 0)).permute(0, 3, 1, 2).contiguous()
    return flow.to(device=a.device, dtype=torch.float32)


@functools.lru_cache(maxsize=4)
def _raft_cached(name: str, path: str | None, device: str):
    return load_raft(name, path, device)


def load_raft(name: str = "raft_large", path=None, device="cpu") -> torch.nn.Module:
    """Build torchvision's RAFT (``"raft_large"`` or ``"raft_small"``) and load local weights.

    Weights come from ``v2v.weights.find_weights(name, path)`` (explicit path, ``$V2V_WEIGHTS``
    or the torch hub cache; nothing is downloaded) and are read with
    ``torch.load(weights_only=True)``. A missing file raises V2VError naming the file to download.

    Args:
        name: ``"raft_large"`` or ``"raft_small"``.
        path: explicit weights file (optional).
        device: where the model goes.

    Returns:
        the RAFT module in eval mode.

    Example:
        >>> load_raft("raft_tiny")
        Traceback (most recent call last):
        ...
        v2v.errors.V2VError: unknown RAFT model 'raft_tiny'; did you mean 'raft_small'? (valid: raft_large, raft_small)
    """
    from v2v.weights import find_weights

    if name not in ("raft_large", "raft_small"):
        raise V2VError(unknown_key_message("RAFT model", name, ("raft_large", "raft_small")))
    file = find_weights(name, path)
    from torchvision.models.optical_flow import raft_large, raft_small

    model = (raft_large if name == "raft_large" else raft_small)(weights=None, progress=False)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise V2VError(f"{file}: cannot read RAFT weights ({type(e).__name__}: {e})") from e
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise V2VError(f"{file}: does not match torchvision {name} ({str(e).splitlines()[0]})") from e
    return model.eval().to(device)


def _raft_flow(a: torch.Tensor, b: torch.Tensor, method: str, kw: dict) -> torch.Tensor:
    name = kw.pop("model", "raft_small" if method == "raft_small" else "raft_large")
    path = kw.pop("weights", None)
    iters = int(kw.pop("num_flow_updates", 12))
    model = kw.pop("net", None)
    if kw:
        raise V2VError(
            unknown_key_message("RAFT option", min(kw), ("model", "weights", "num_flow_updates", "net"))
        )
    if model is None:
        model = _raft_cached(name, None if path is None else str(path), str(a.device))
    h, w = a.shape[-2:]
    x, y = a.float() * 2 - 1, b.float() * 2 - 1
    # RAFT's correlation pyramid needs >= 128 px per side: smaller inputs are upscaled first.
    small = min(h, w) < _RAFT_MIN
    if small:
        s = _RAFT_MIN / min(h, w)
        size = (max(_RAFT_MIN, round(h * s)), max(_RAFT_MIN, round(w * s)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
    hh, ww = x.shape[-2:]
    ph, pw = (-hh) % 8, (-ww) % 8
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    x = F.pad(x, pad, mode="replicate")
    y = F.pad(y, pad, mode="replicate")
    with torch.no_grad():
        flow = model(x, y, num_flow_updates=iters)[-1]
    flow = flow[:, :, pad[2] : pad[2] + hh, pad[0] : pad[0] + ww].contiguous()
    if small:
        flow = resize_flow(flow, (h, w))
    return flow


def estimate_flow(a, b, method: str = "dis", **kw) -> torch.Tensor:
    """Estimate the backward flow from ``a`` to ``b``: ``warp(b, flow) ≈ a``.

    Args:
        a, b: images ``B,3,H,W`` float in [0,1] (``3,H,W`` accepted), or ``H,W,3`` RGB numpy
            (uint8 0..255 or float [0,1]). Same size.
        method: ``"dis"`` (OpenCV DIS, preset ``"medium"`` by default; fast on CPU),
            ``"farneback"`` (OpenCV Farneback), ``"raft"`` / ``"raft_small"`` (torchvision RAFT;
            needs local weights, see :func:`load_raft`; input is padded to multiples of 8 and
            sides under 128 px are upscaled first, the flow scaled back).
        **kw: method options. DIS: ``preset`` ("ultrafast" | "fast" | "medium") and any
            ``cv2.DISOpticalFlow`` setter in snake case (``finest_scale=0``). Farneback: the
            ``cv2.calcOpticalFlowFarneback`` arguments (``levels``, ``winsize``...). RAFT:
            ``model``, ``weights`` (path), ``num_flow_updates`` (12), ``net`` (a loaded model).

    Returns:
        ``B,2,H,W`` float32 flow in pixels (x, y), on the device of ``a`` (CPU for numpy input).
        OpenCV methods run on CPU on 8-bit grayscale; no gradient flows through any method.

    Example:
        >>> a = torch.rand(1, 3, 32, 32)
        >>> estimate_flow(a, a).abs().max() < 0.5        # identical frames: (almost) no motion
        tensor(True)
    """
    if method not in FLOW_METHODS:
        raise V2VError(unknown_key_message("flow method", method, FLOW_METHODS))
    ta, tb = _to_tensor(a, "a"), _to_tensor(b, "b")
    if ta.shape != tb.shape:
        raise ValueError(f"estimate_flow: a {tuple(ta.shape)} and b {tuple(tb.shape)} differ in shape")
    if method in ("dis", "farneback"):
        return _cv2_flow(ta, tb, method, dict(kw))
    return _raft_flow(ta, tb, method, dict(kw))
