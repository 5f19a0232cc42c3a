"""The public Python API: load anything a user holds in one call, then one call per job.

::

    import v2v

    s = v2v.load("vox-cpk.pth.tar", config="vox-256.yaml")      # official FOMM
    s = v2v.load("checkpoints/label2city/")                      # official vid2vid folder (G0 + opt.txt)
    s = v2v.load("checkpoints/edn/latest_net_G.pth", "opt.txt")   # official Everybody Dance Now
    s = v2v.load("runs/x/checkpoints/step_00001000.safetensors")  # a `v2v train` checkpoint
    s.save_pretrained("models/x"); s = v2v.load("models/x")      # bit-exact round trip

    for frame in v2v.animate(fomm, source_image, driving_frames): ...   # FOMM, streaming
    for frame in v2v.generate(vid2vid, label_maps): ...                 # vid2vid, streaming
    for frame in v2v.transfer(edn, pose_labels, face_boxes): ...        # Everybody Dance Now

:func:`load` detects the format from the files:

1. a folder written by :meth:`v2v.models.base.System.save_pretrained` / ``v2v convert``
   (``<system>.safetensors`` + ``<system>.yaml``);
2. a v2v ``.safetensors`` file: the system and model config come from its metadata (``v2v
   train`` checkpoints embed their experiment, ``save_pretrained`` its model section), else
   from ``config`` (a v2v YAML with ``system`` and ``model``);
3. anything else is an official checkpoint: each registered system's compat ``detect`` is asked,
   and the first that claims the files builds the system through the one generic path
   ``read_official -> config_from_official -> from_config(inference=True) ->
   checkpoint_filter_fn -> weights_io.check_state_dict -> load_state_dict``.

Every mismatch is one :class:`v2v.errors.V2VError` line naming the first mismatched keys and
shapes. The returned system is inference-built (no discriminators), in eval mode.
"""
from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterable, Iterator

import torch

from v2v.errors import V2VError

__all__ = ["animate", "build_system", "generate", "load", "load_state", "transfer"]

CONTRACT = ("detect", "read_official", "config_from_official", "checkpoint_filter_fn")


# ------------------------------------------------------------------------------------ building


def build_system(name: str, model_cfg, inference: bool = True):
    """``System.from_config(model_cfg, inference=True)`` of the registered system ``name``; a
    dict config is read into the system's ``ModelConfig`` (unknown keys are errors)."""
    from v2v.config import from_dict
    from v2v.registry import get_system_class

    cls = get_system_class(name)
    if isinstance(model_cfg, dict):
        model_cfg = from_dict(cls.ModelConfig, model_cfg, prefix="model")
    return cls.from_config(model_cfg, inference=inference)


def load_state(system: torch.nn.Module, state: dict, where: str) -> torch.nn.Module:
    """Strictly load ``state`` (our keys) into ``system``: the one check every loader uses.

    Keys under top-level names the inference-built system does not have (its training-only
    networks: discriminators, ...) are ignored; inside the networks it has, every key must match
    in name and shape, and none may be missing (V2VError naming the first mismatches).
    """
    from v2v.weights_io import check_state_dict

    expected = system.state_dict()
    present = set(system._modules) | {k.split(".", 1)[0] for k in expected}
    got = {k: v for k, v in state.items() if k.split(".", 1)[0] in present}
    check_state_dict(expected, got, where, strict=True)
    with torch.no_grad():
        system.load_state_dict(got, strict=True)
    return system


# ---------------------------------------------------------------------------------- detection


def _compat(spec):
    """A system's compat module when it has the loading contract (else None: it cannot load
    official files yet)."""
    if not spec.compat:
        return None
    try:
        mod = importlib.import_module(spec.compat)
    except ModuleNotFoundError as exc:
        if exc.name == spec.compat:  # registered, compat module not written yet
            return None
        raise
    return mod if all(hasattr(mod, f) for f in CONTRACT) else None


def detect_system(checkpoint: str, config: str | None = None) -> tuple[str, object]:
    """(system name, compat functions) of the first registered system whose ``detect`` claims
    these official files; V2VError listing what was tried."""
    from v2v.registry import all_systems

    tried, broken = [], []
    for name, spec in all_systems().items():
        try:
            compat = _compat(spec)
        except ImportError as exc:  # one broken system must not stop the others loading
            broken.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if compat is None:
            continue
        tried.append(name)
        if compat.detect(checkpoint, config):
            return name, compat
    why = f"; could not import: {'; '.join(broken)}" if broken else ""
    raise V2VError(f"{checkpoint}: not a v2v checkpoint and no system recognises it as an official one "
                   f"(tried {', '.join(tried)}); pass the official config (opt.txt / YAML) with config={why}")


def _load_official(checkpoint: str, config: str | None):
    name, compat = detect_system(checkpoint, config)
    options, sd = compat.read_official(checkpoint, config)
    cfg = compat.config_from_official(options)
    system = build_system(name, cfg)
    return load_state(system, compat.checkpoint_filter_fn(sd, cfg), checkpoint)


# ------------------------------------------------------------------------------ v2v safetensors


def _pretrained_files(folder: str) -> tuple[str, str | None]:
    """(weights, yaml or None) of a save_pretrained / convert folder."""
    weights = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    if len(weights) != 1:
        what = "no" if not weights else f"{len(weights)}"
        raise V2VError(f"{folder}: {what} .safetensors files (expected one, as written by save_pretrained / "
                       f"`v2v convert`)")
    stem = weights[0][: -len(".safetensors")]
    yml = next((os.path.join(folder, f"{stem}{e}") for e in (".yaml", ".yml")
                if os.path.isfile(os.path.join(folder, f"{stem}{e}"))), None)
    return os.path.join(folder, weights[0]), yml


def _model_section(meta: dict, config: str | None, path: str) -> tuple[str, dict]:
    """(system name, model dict) from the file's metadata, else from a v2v YAML ``config``."""
    from v2v.config import load_yaml

    name = meta.get("system")
    for key in ("model", "config"):  # save_pretrained / convert, then a trainer's experiment
        if key in meta:
            try:
                doc = json.loads(meta[key])
            except ValueError:
                raise V2VError(f"{path}: unreadable '{key}' metadata") from None
            if key == "config":
                name, doc = doc.get("system", name), doc.get("model")
            if isinstance(doc, dict) and name:
                return name, doc
    if config is None:
        raise V2VError(f"{path}: no model config in the file's metadata; pass the v2v YAML it was made with "
                       f"(config=..., with 'system' and 'model' sections)")
    data = load_yaml(config)
    name = data.get("system", name)
    if not name or not isinstance(data.get("model"), dict):
        raise V2VError(f"{config}: expected a v2v YAML with 'system' and 'model' sections for {path}")
    return name, data["model"]


def _load_safetensors(path: str, config: str | None, ema: bool):
    from v2v.weights_io import read_weights, select_weights

    tensors, meta = read_weights(path)
    name, model = _model_section(meta, config, path)
    return load_state(build_system(name, model), select_weights(tensors, path, ema), path)


def _is_safetensors(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    return path.endswith(".safetensors") or (len(head) == 9 and head[8:9] == b"{")


def load(checkpoint: str | os.PathLike, config: str | os.PathLike | None = None,
         device: str | torch.device | None = None, ema: bool = False):
    """Load any checkpoint a user holds; returns the inference-built System in eval mode.

    Args:
        checkpoint: a ``save_pretrained`` / ``v2v convert`` folder, a v2v ``.safetensors`` file,
            or an official checkpoint (file or folder; FOMM ``.pth.tar``, vid2vid
            ``latest_net_G0.pth``, EDN ``latest_net_G.pth``, ...).
        config: the official config (FOMM YAML, ``opt.txt``) for an official checkpoint whose
            folder does not hold it, or the v2v YAML of a safetensors file without metadata.
        device: where to put the system (default CPU; ``"auto"`` = CUDA when present).
        ema: use the EMA generator weights of a ``v2v train`` checkpoint.

    Returns:
        The :class:`v2v.models.base.System` (``type(s).system_name`` names it).

    Raises:
        V2VError: one line naming the file and the first mismatched keys and shapes.
    """
    from v2v.device import resolve_device

    path = os.fspath(checkpoint)
    config = os.fspath(config) if config is not None else None
    if config is not None and not os.path.exists(config):
        raise V2VError(f"config not found: {config}")
    if not os.path.exists(path):
        raise V2VError(f"checkpoint not found: {path}")
    if os.path.isdir(path) and any(f.endswith(".safetensors") for f in os.listdir(path)):
        weights, yml = _pretrained_files(path)
        system = _load_safetensors(weights, config or yml, ema)
    elif os.path.isfile(path) and _is_safetensors(path):
        system = _load_safetensors(path, config, ema)
    else:
        system = _load_official(path, config)
    return system.to(resolve_device(device or "cpu")).eval()


# ------------------------------------------------------------------------------------- jobs


def _frames(x, size=None) -> Iterator[torch.Tensor]:
    """Frames ``1,3,H,W`` float in [0,1] from a video path, a ``T,3,H,W`` tensor, or an iterable
    of ``3,H,W`` / ``H,W,3`` uint8 arrays or tensors."""
    if isinstance(x, (str, os.PathLike)):
        from v2v.data.video import open_video

        with open_video(os.fspath(x)) as reader:
            for f in reader:
                yield _image(f, size)
        return
    for f in x:
        yield _image(f, size)


def _image(x, size=None) -> torch.Tensor:
    """One image ``1,3,H,W`` float in [0,1] (path, ``H,W,3`` uint8 array, ``3,H,W`` / ``1,3,H,W``)."""
    import numpy as np

    if isinstance(x, (str, os.PathLike)):
        from v2v.data.image import read_image

        x = read_image(os.fspath(x))
    if isinstance(x, np.ndarray):
        if x.ndim != 3 or x.shape[2] != 3:
            raise V2VError(f"expected an H,W,3 image array, got shape {x.shape}")
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).float()
        x = t / 255.0 if x.dtype == np.uint8 else t
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[1] != 3:
        raise V2VError(f"expected an image 3,H,W or 1,3,H,W, got shape {tuple(x.shape)}")
    x = x.float()
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = torch.nn.functional.interpolate(x, size=tuple(size), mode="area")
    return x


def _device(system) -> torch.device:
    return next(system.parameters()).device


def animate(system, source, driving, mode: str = "relative", adapt_scale: bool = False,
            batch_frames: int = 1) -> Iterator[torch.Tensor]:
    """FOMM: animate ``source`` (image path / array / tensor) by ``driving`` (video path or
    frames); yields ``3,H,W`` frames in [0,1], one per driving frame (streamed: memory does not
    grow with the video). Inputs are resized to the model's ``image_size``. A thin wrapper over
    :class:`v2v.models.fomm.Animator`."""
    from v2v.models.fomm import Animator

    _check_system(system, "fomm", "animate")
    size = (system.cfg.image_size, system.cfg.image_size)
    dev = _device(system)
    anim = Animator(system.kp_detector, system.generator, _image(source, size).to(dev), mode=mode,
                    adapt_scale=adapt_scale)
    buf = []
    for f in _frames(driving, size):
        buf.append(f)
        if len(buf) == batch_frames:
            yield from anim(torch.cat(buf).to(dev)).clamp(0, 1).cpu()
            buf.clear()
    if buf:
        yield from anim(torch.cat(buf).to(dev)).clamp(0, 1).cpu()


def generate(system, labels: Iterable, instances: Iterable | None = None, first_frames=(),
             **stream_options) -> Iterator[torch.Tensor]:
    """vid2vid: label maps (``H,W`` integer arrays/tensors, each at the model's size) -> yields
    ``3,H,W`` frames in [0,1]. ``instances``: the instance maps when the model uses them;
    ``first_frames``: real frames to start from. A thin wrapper over
    :class:`v2v.models.vid2vid.Vid2VidStream` (``stream_options`` are passed to it)."""
    from v2v.models.vid2vid import Vid2VidStream

    _check_system(system, "vid2vid", "generate")
    dev = _device(system)
    first = [_image(f)[0] for f in first_frames]
    stream_options.setdefault("first_generator", getattr(system, "netG_i", None))   # use_single_G
    stream = Vid2VidStream(system.netG, system.cfg, first_frames=first, **stream_options)
    insts = iter(instances) if instances is not None else None
    for lab in labels:
        lab = torch.as_tensor(lab).long().to(dev)
        inst = None
        if insts is not None:
            inst = torch.as_tensor(next(insts)).long().to(dev)[None]
        yield stream.step(lab[None], inst)[0].cpu()


def transfer(system, labels: Iterable, boxes: Iterable | None = None) -> Iterator[torch.Tensor]:
    """Everybody Dance Now: rendered pose labels (``3,H,W`` in [0,1] or ``H,W,3`` uint8) and, for
    a model with a face generator, one face box ``(miny, maxy, minx, maxx)`` per frame -> yields
    ``3,H,W`` frames in [0,1]. Each output conditions the next (the temporal chain)."""
    _check_system(system, "dance", "transfer")
    dev = _device(system)
    G = system.generator
    box_it = iter(boxes) if boxes is not None else None
    prev = None
    with torch.no_grad():
        for lab in labels:
            b = None if box_it is None else torch.as_tensor(next(box_it)).long().view(1, 4).to(dev)
            img = G.step_raw(_image(lab).to(dev), prev, b)["image"]
            prev = img
            yield ((img[0] + 1) / 2).clamp(0, 1).cpu()


def _check_system(system, name: str, job: str) -> None:
    if type(system).system_name != name:
        raise V2VError(f"v2v.{job} needs a '{name}' system, got '{type(system).system_name or type(system).__name__}'")
