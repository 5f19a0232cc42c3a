"""FOMM as three ONNX graphs, and an onnxruntime animator that runs them without torch models.

``export_fomm_onnx(kp_detector, generator, out_dir, image_size)`` writes

- ``kp_detector.onnx``: ``image N,3,H,W`` -> ``value N,K,2`` (+ ``jacobian N,K,2,2``);
- ``fomm_source.onnx``: ``source 1,3,H,W`` -> ``encoded 1,C,h,w``, ``source_down 1,3,h',w'``
  (the per-source work, run once);
- ``fomm_decoder.onnx``: ``encoded``, ``source_down``, driving / source keypoints -> ``prediction
  N,3,H,W`` (dense motion, warp, occlusion, decoder; batch N dynamic);
- ``fomm_onnx.json``: image size, number of keypoints, whether jacobians are estimated.

:class:`OnnxFOMM` loads them with onnxruntime; :meth:`OnnxFOMM.animator` gives the streaming
animator (relative motion and the movement scale in numpy, as :func:`v2v.models.fomm.normalize_kp`).
"""
from __future__ import annotations

import json
import os

import numpy as np

from v2v.errors import V2VError

__all__ = ["OnnxFOMM", "export_fomm_onnx"]

FILES = ("kp_detector.onnx", "fomm_source.onnx", "fomm_decoder.onnx", "fomm_onnx.json")


def export_fomm_onnx(kp_detector, generator, out_dir: str | os.PathLike, image_size: int, opset: int = 17) -> list[str]:
    """Export the three graphs (eval mode, float32) into ``out_dir``; returns the written paths."""
    import torch
    from torch import nn

    from v2v.utils import atomic_path

    jac = kp_detector.jacobian_head is not None
    num_kp = kp_detector.num_kp

    class KP(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = kp_detector

        def forward(self, image):
            out = self.net(image)
            return (out["value"], out["jacobian"]) if jac else out["value"]

    class Source(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = generator

        def forward(self, source):
            cache = self.net.encode_source(source)
            return cache["encoded"], cache.get("source_down", source)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = generator

        def forward(self, encoded, source_down, *kps):
            n, b = len(kps) // 2, kps[0].shape[0]
            kp_s = [k.expand(b, *k.shape[1:]) for k in kps[n:]]  # the source's keypoints, batch 1 -> b
            kp_d = {"value": kps[0]} if n == 1 else {"value": kps[0], "jacobian": kps[1]}
            kp_s = {"value": kp_s[0]} if n == 1 else {"value": kp_s[0], "jacobian": kp_s[1]}
            cache = {"encoded": encoded, "source_down": source_down}
            return self.net(source_down, kp_d, kp_s, source_cache=cache, with_deformed=False)["prediction"]

    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    kp_detector.eval()
    generator.eval()
    img = torch.rand(2, 3, image_size, image_size)
    src = img[:1]
    kp_names = ["kp_driving_value"] + (["kp_driving_jacobian"] if jac else []) + \
        ["kp_source_value"] + (["kp_source_jacobian"] if jac else [])
    with torch.no_grad():
        kp = kp_detector(img)
        encoded, source_down = Source()(src)
    kp_args = [kp["value"]] + ([kp["jacobian"]] if jac else []) + [kp["value"][:1]] + ([kp["jacobian"][:1]] if jac else [])
    paths = []

    def export(module, args, name, inputs, outputs, dynamic):
        path = os.path.join(out_dir, name)
        module.eval()  # the exporter restores the wrapper's mode onto the wrapped networks
        with atomic_path(path) as tmp:
            torch.onnx.export(module, tuple(args), tmp, input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic, opset_version=opset, dynamo=False)
        paths.append(path)

    kp_out = ["value", "jacobian"] if jac else ["value"]
    export(KP(), [img], "kp_detector.onnx", ["image"], kp_out,
           {"image": {0: "n"}, **{k: {0: "n"} for k in kp_out}})
    export(Source(), [src], "fomm_source.onnx", ["source"], ["encoded", "source_down"], None)
    export(Decoder(), [encoded, source_down, *kp_args], "fomm_decoder.onnx", ["encoded", "source_down", *kp_names],
           ["prediction"], {"kp_driving_value": {0: "n"}, "kp_driving_jacobian": {0: "n"}, "prediction": {0: "n"}}
           if jac else {"kp_driving_value": {0: "n"}, "prediction": {0: "n"}})
    meta = os.path.join(out_dir, "fomm_onnx.json")
    with atomic_path(meta) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({"system": "fomm", "image_size": image_size, "num_kp": num_kp, "estimate_jacobian": jac,
                   "opset": opset}, f, indent=1)
    return [*paths, meta]


def _inv2(m: np.ndarray) -> np.ndarray:
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    return np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / det[..., None, None]


class OnnxFOMM:
    """The exported graphs of a folder, run with onnxruntime (CPU).

    ``OnnxFOMM(dir)(image N,3,H,W)`` -> ``{"value": ...}`` keypoints (a tensor when given one);
    :meth:`animator` -> a streaming animator with the :class:`v2v.models.fomm.Animator` interface.
    """

    def __init__(self, folder: str | os.PathLike, threads: int | None = None):
        folder = os.fspath(folder)
        missing = [f for f in FILES if not os.path.isfile(os.path.join(folder, f))]
        if missing:
            raise V2VError(f"{folder}: not a `v2v export fomm --format onnx` folder (missing {', '.join(missing)})")
        try:
            import onnxruntime as ort
        except ImportError:
            raise V2VError("--backend onnxruntime needs the onnxruntime package (pip install 'v2v[onnx]')") from None
        with open(os.path.join(folder, "fomm_onnx.json"), encoding="utf-8") as f:
            meta = json.load(f)
        self.image_size = int(meta["image_size"])
        self.jacobian = bool(meta["estimate_jacobian"])
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.sessions = {n: ort.InferenceSession(os.path.join(folder, f"{n}.onnx"), opts,
                                                 providers=["CPUExecutionProvider"])
                         for n in ("kp_detector", "fomm_source", "fomm_decoder")}

    def keypoints(self, image: np.ndarray) -> dict[str, np.ndarray]:
        out = self.sessions["kp_detector"].run(None, {"image": np.ascontiguousarray(image, np.float32)})
        return {"value": out[0], **({"jacobian": out[1]} if self.jacobian else {})}

    def __call__(self, image):
        import torch

        kp = self.keypoints(image.cpu().numpy() if torch.is_tensor(image) else image)
        return {k: torch.from_numpy(v) for k, v in kp.items()}

    def animator(self, source: np.ndarray, mode: str = "relative", adapt_scale: bool = False) -> _OnnxAnimator:
        return _OnnxAnimator(self, np.ascontiguousarray(source, np.float32), mode, adapt_scale)


class _OnnxAnimator:
    def __init__(self, model: OnnxFOMM, source: np.ndarray, mode: str, adapt_scale: bool):
        if mode not in ("relative", "absolute"):
            raise V2VError(f"animation mode must be 'relative' or 'absolute', got {mode!r}")
        self.m, self.mode, self.adapt_scale = model, mode, adapt_scale
        self.kp_source = model.keypoints(source)
        self.encoded, self.source_down = model.sessions["fomm_source"].run(None, {"source": source})
        self.kp_initial, self.scale = None, 1.0

    def set_initial(self, frame) -> None:
        frame = frame.cpu().numpy() if hasattr(frame, "cpu") else frame
        self.kp_initial = {k: v[:1] for k, v in self.m.keypoints(frame).items()}
        if self.adapt_scale and self.mode == "relative":
            from scipy.spatial import ConvexHull

            a = ConvexHull(self.kp_source["value"][0]).volume
            b = ConvexHull(self.kp_initial["value"][0]).volume
            self.scale = float(np.sqrt(a) / np.sqrt(b))

    def __call__(self, frames):
        import torch

        frames = frames.cpu().numpy() if torch.is_tensor(frames) else frames
        kp_d = self.m.keypoints(frames)
        if self.kp_initial is None:
            self.set_initial(frames[:1])
        n = frames.shape[0]
        kp_s = {k: np.repeat(v, n, axis=0) for k, v in self.kp_source.items()}
        kp = dict(kp_d)
        if self.mode == "relative":
            kp["value"] = ((kp_d["value"] - self.kp_initial["value"]) * self.scale + kp_s["value"]).astype(np.float32)
            if self.m.jacobian:
                kp["jacobian"] = (kp_d["jacobian"] @ _inv2(self.kp_initial["jacobian"]) @ kp_s["jacobian"]).astype(np.float32)
        feeds = {"encoded": self.encoded, "source_down": self.source_down, "kp_driving_value": kp["value"],
                 "kp_source_value": self.kp_source["value"]}
        if self.m.jacobian:
            feeds["kp_driving_jacobian"] = kp["jacobian"]
            feeds["kp_source_jacobian"] = self.kp_source["jacobian"]
        pred = self.m.sessions["fomm_decoder"].run(["prediction"], feeds)[0]
        return torch.from_numpy(pred)
