"""Datasets: paired label-map sequences (vid2vid / pix2pixHD layouts) and video folders (FOMM).

Conventions: items are dicts of tensors collated by torch's default collate. Label maps are
``LongTensor`` ids (``T,H,W`` per item, never one-hot: use :func:`labels_to_input`), images are
float32 ``3,H,W`` / ``T,3,H,W`` in [0, 1], flow is float32 ``T-1,2,H,W`` in pixels (x right,
y down). ``size`` arguments are ``(H, W)``; labels and instance maps are resized with nearest
neighbour, images with INTER_AREA when shrinking (bilinear when enlarging), flow bilinearly
with its vectors scaled by the resize factors.

**Name pairing.** Label, image, instance and flow files are paired by *name stem* after removing
known Cityscapes suffixes (:data:`KNOWN_SUFFIXES`, e.g. ``_leftImg8bit``,
``_gtFine_labelIds``, ``_gtFine_instanceIds``), so ``aachen_000000_000019_leftImg8bit.png``,
``aachen_000000_000019_gtFine_labelIds.png`` and ``..._gtFine_instanceIds.png`` all have the key
``aachen_000000_000019``. The extension never matters (``.png`` labels vs ``.jpg`` frames).

**Determinism** (:class:`VideoFolderDataset`). With ``seed=None`` (default) every random choice
draws from torch's global RNG, which :mod:`v2v.train` re-seeds before each item from
(seed, epoch, position) - so resume and worker count do not change the data. With an int
``seed`` each item uses its own ``torch.Generator`` seeded from ``(seed, epoch, index)``
(``numpy.random.SeedSequence``), so ``ds[i]`` is reproducible on its own; call
:meth:`VideoFolderDataset.set_epoch` each epoch to get fresh draws.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from v2v.data.image import IMAGE_EXTENSIONS, read_image, read_label_map, resize_image
from v2v.data.video import VIDEO_EXTENSIONS, list_frames, natural_key, open_video
from v2v.errors import V2VError

__all__ = [
    "KNOWN_SUFFIXES",
    "LAYOUTS",
    "LabelSequenceDataset",
    "PairedImageDataset",
    "VideoFolderDataset",
    "labels_to_input",
    "pairing_key",
    "read_flo",
]

#: Suffixes stripped from file stems before pairing (longest first).
KNOWN_SUFFIXES = (
    "_gtFine_instanceTrainIds",
    "_gtFine_instanceIds",
    "_gtFine_labelTrainIds",
    "_gtFine_labelIds",
    "_gtFine_polygons",
    "_gtFine_color",
    "_gtCoarse_instanceIds",
    "_gtCoarse_labelTrainIds",
    "_gtCoarse_labelIds",
    "_gtCoarse_color",
    "_leftImg8bit",
    "_instanceIds",
    "_labelIds",
)


def pairing_key(path: str | os.PathLike) -> str:
    """The pairing key of a file: its stem without a known Cityscapes suffix."""
    stem = Path(path).stem
    for s in KNOWN_SUFFIXES:
        if stem.endswith(s):
            return stem[: -len(s)]
    return stem


def read_flo(path: str | os.PathLike) -> np.ndarray:
    """Read a Middlebury ``.flo`` file as float32 ``H,W,2`` (pixels, x right, y down).

    Uses ``v2v.ops.flow.read_flo`` when that module provides it.
    """
    try:
        from v2v.ops.flow import read_flo as _ops_read_flo  # type: ignore[attr-defined]
    except ImportError:
        _ops_read_flo = None
    if _ops_read_flo is not None:
        return np.asarray(_ops_read_flo(path), dtype=np.float32)
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise V2VError(f"{p}: cannot read ({e.strerror or e})") from None
    if len(data) < 12 or abs(float(np.frombuffer(data[:4], "<f4")[0]) - 202021.25) > 1e-3:
        raise V2VError(f"{p}: not a Middlebury .flo file (bad magic number)")
    w, h = (int(v) for v in np.frombuffer(data[4:12], "<i4"))
    if w <= 0 or h <= 0 or len(data) != 12 + 8 * w * h:
        raise V2VError(
            f"{p}: truncated .flo file (expected {12 + 8 * max(w, 0) * max(h, 0)} bytes for {w}x{h})"
        )
    return np.frombuffer(data[12:], "<f4").reshape(h, w, 2).copy()


def labels_to_input(labels: torch.Tensor, instances: torch.Tensor | None, label_nc: int, use_instance: bool):
    """Generator input from label ids: one-hot (``label_nc`` channels) + optional instance edges.

    ``labels``: integer ``B,H,W`` or ``B,T,H,W``; ``instances``: same shape (or None when
    ``use_instance`` is False). Returns float32 ``B,C,H,W`` (or ``B,T,C,H,W``) with
    ``C = label_nc + use_instance``; the edge channel is pix2pixHD's boundary map (1 on both
    sides of an instance boundary). Ids outside ``[0, label_nc)`` raise V2VError.
    """
    from v2v.ops.labels import instance_edges, one_hot

    lead = labels.shape[:-2]
    lab = labels.reshape(-1, *labels.shape[-2:])
    try:
        x = one_hot(lab, label_nc)
    except ValueError as e:
        raise V2VError(f"labels_to_input: {e}") from None
    if use_instance:
        if instances is None:
            raise V2VError("labels_to_input: use_instance=True but no instance map was given")
        inst = instances.reshape(-1, *instances.shape[-2:])
        x = torch.cat([x, instance_edges(inst).to(x.dtype)], dim=1)
    return x.reshape(*lead, x.shape[1], *x.shape[-2:])


# --------------------------------------------------------------------------------------------
# helpers


def _files(folder: Path, exts) -> list[Path]:
    return [p for p in list_frames(folder, exts)]


def _by_key(files: list[Path], where: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        k = pairing_key(f)
        if k in out:
            raise V2VError(f"{where}: two files pair to the same name '{k}': {out[k].name} and {f.name}")
        out[k] = f
    return out


def _resize_labels(a: np.ndarray, size) -> np.ndarray:
    return a if size is None else resize_image(a, size, mode="nearest")


def _resize_rgb(a: np.ndarray, size) -> np.ndarray:
    return a if size is None else resize_image(a, size)


def _resize_flow(f: np.ndarray, size) -> np.ndarray:
    if size is None:
        return f
    h0, w0 = f.shape[:2]
    out = resize_image(f.astype(np.float32), size, mode="bilinear")
    out[..., 0] *= size[1] / w0
    out[..., 1] *= size[0] / h0
    return out


def _size_hw(size):
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    h, w = (int(s) for s in size)
    return (h, w)


def _rgb_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0)


# --------------------------------------------------------------------------------------------
# vid2vid label-map sequences

#: Folder names per layout; ``{split}`` is substituted.
LAYOUTS = {
    "vid2vid": {
        "labels": "{split}_A",
        "images": "{split}_B",
        "instances": "{split}_inst",
        "flow": "{split}_flow",
        "occ": "{split}_occ",
        "flowprev": "{split}_flowprev",
        "occprev": "{split}_occprev",
    },
    # NVlabs/imaginaire raw layout: root is the split folder (e.g. .../raw/vid2vid/street)
    "imaginaire": {
        "labels": "seg_maps",
        "images": "images",
        "instances": "instance_maps",
        "flow": "flow",
        "occ": "occ",
        "flowprev": "flowprev",
        "occprev": "occprev",
    },
}


class LabelSequenceDataset(torch.utils.data.Dataset):
    """Label-map -> video sequences in the vid2vid "street" layout.

    Layout under ``root`` (``split`` = ``"train"``/``"test"``/...)::

        {split}_A/<seq>/*.png      label ids (8- or 16-bit PNG)             required
        {split}_B/<seq>/*.{jpg,png} RGB frames                              optional per sequence
        {split}_inst/<seq>/*.png   instance ids (8-bit, 255 = none; or 16-bit label*1000+k)
        {split}_flow/<seq>/*.flo   optional, flow for frames 0..T-2 towards t+1
        {split}_occ/<seq>/*.png    optional, 255 = flow invalid (with _flow)
        {split}_flowprev/<seq>/*.flo, {split}_occprev/<seq>/*.png  optional, frames 1..T-1 towards t-1

    Frames are ordered naturally by file name (``..._000002`` < ``..._000010``; the vid2vid
    ``stuttgart_00`` demo numbers frames 1..30). Files pair by :func:`pairing_key`.

    Items (one per clip; clips start every ``clip_step`` frames; ``n_frames=None`` gives one
    item per sequence covering all of its first ``max_frames`` frames):

    * ``labels``: ``LongTensor T,H,W``; ``instances``: ``LongTensor T,H,W`` (when used);
    * ``images``: ``FloatTensor T,3,H,W`` in [0,1], only when the sequence has frames;
    * ``flow``/``occ`` (``T-1,2,H,W`` / ``T-1,1,H,W``, occ 1 = invalid) from ``{split}_flow``
      and ``flowprev``/``occprev`` from ``{split}_flowprev`` when those folders exist and
      ``stride == 1``;
    * ``seq`` (name), ``start`` (first frame index), ``frame_ids`` (``LongTensor T``).

    Args:
        n_frames: frames per clip (vid2vid's ``n_frames_total``), or None for whole sequences.
        label_nc: number of label classes; ids ``>= label_nc`` raise V2VError naming the file
            and the max id. ``None`` skips the check.
        use_instance: True requires instance maps, False ignores them, None uses them when the
            ``{split}_inst`` folder exists.
        size: ``(H, W)`` output size or None for the native size.
        max_frames: use only the first ``max_frames`` frames of each sequence.
        stride: step between the frames of a clip (vid2vid's ``t_step``).
        clip_step: step between the start frames of consecutive clips of a sequence.
        load_images: False skips the ``{split}_B`` frames (label-to-video inference).
        layout: ``"vid2vid"`` (above) or ``"imaginaire"`` (``seg_maps/<seq>``, ``images/<seq>``,
            ``instance_maps/<seq>``, ... directly under ``root``; ``split`` is ignored).

    Pairings (counts, names, instance maps) are validated in the constructor without decoding
    anything; label ids are checked against ``label_nc`` when a file is read.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        n_frames: int | None = None,
        label_nc: int | None = None,
        use_instance: bool | None = None,
        size=None,
        max_frames: int | None = None,
        stride: int = 1,
        clip_step: int = 1,
        load_images: bool = True,
        layout: str = "vid2vid",
    ):
        self.root = Path(root)
        self.split = split
        if layout not in LAYOUTS:
            raise V2VError(f"LabelSequenceDataset: unknown layout '{layout}' (valid: {', '.join(LAYOUTS)})")
        self.dirs = {k: v.format(split=split) for k, v in LAYOUTS[layout].items()}
        self.n_frames = n_frames
        self.label_nc = label_nc
        self.size = _size_hw(size)
        self.max_frames = max_frames
        self.stride = int(stride)
        self.clip_step = int(clip_step)
        if self.stride < 1 or self.clip_step < 1:
            raise V2VError(f"{self.root}: stride and clip_step must be >= 1 (got {stride}, {clip_step})")
        if n_frames is not None and n_frames < 1:
            raise V2VError(f"{self.root}: n_frames must be >= 1 or None, got {n_frames}")
        dir_a = self.root / self.dirs["labels"]
        if not self.root.is_dir():
            raise V2VError(f"{self.root}: dataset folder not found")
        if not dir_a.is_dir():
            raise V2VError(
                f"{dir_a}: label folder not found (expected {dir_a.name}/<sequence>/*.png under {self.root})"
            )
        dir_b = self.root / self.dirs["images"]
        dir_i = self.root / self.dirs["instances"]
        if use_instance is None:
            use_instance = dir_i.is_dir()
        elif use_instance and not dir_i.is_dir():
            raise V2VError(f"{dir_i}: instance folder not found (use_instance=True)")
        self.use_instance = bool(use_instance)
        self.seqs: list[dict] = []
        seq_dirs = sorted((d for d in dir_a.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name))
        if not seq_dirs:
            raise V2VError(f"{dir_a}: contains no sequence folders (expected {dir_a.name}/<sequence>/*.png)")
        for sd in seq_dirs:
            self.seqs.append(self._scan(sd, dir_b, dir_i, load_images))
        self.items: list[tuple[int, int]] = []
        for si, s in enumerate(self.seqs):
            n = len(s["labels"])
            if n_frames is None:
                self.items.append((si, 0))
                continue
            span = (n_frames - 1) * self.stride + 1
            if n < span:
                continue
            self.items.extend((si, st) for st in range(0, n - span + 1, self.clip_step))
        if not self.items:
            lens = ", ".join(f"{s['name']}={len(s['labels'])}" for s in self.seqs)
            raise V2VError(
                f"{dir_a}: no sequence is long enough for n_frames={n_frames} with stride={self.stride} "
                f"(frames per sequence: {lens})"
            )

    def _scan(self, sd: Path, dir_b: Path, dir_i: Path, load_images: bool) -> dict:
        name = sd.name
        labels = _files(sd, (".png", ".bmp", ".tif", ".tiff", ".pgm"))
        if not labels:
            raise V2VError(f"{sd}: contains no label maps (*.png)")
        if self.max_frames is not None:
            labels = labels[: self.max_frames]
        keys = [pairing_key(p) for p in labels]
        if len(set(keys)) != len(keys):
            _by_key(labels, sd)  # raises naming the duplicates
        seq = {"name": name, "labels": labels, "images": None, "inst": None}
        if load_images and (dir_b / name).is_dir():
            seq["images"] = self._pair(dir_b / name, IMAGE_EXTENSIONS, keys, "images", name, sd)
        if self.use_instance:
            if not (dir_i / name).is_dir():
                raise V2VError(
                    f"{dir_i / name}: instance maps for sequence '{name}' not found (use_instance=True)"
                )
            seq["inst"] = self._pair(
                dir_i / name, (".png", ".tif", ".tiff", ".pgm"), keys, "instance maps", name, sd
            )
        for kind in ("flow", "flowprev"):
            fd = self.root / self.dirs[kind] / name
            if fd.is_dir():
                m = _by_key(_files(fd, (".flo",)), fd)
                od = self.root / self.dirs["occ" if kind == "flow" else "occprev"] / name
                om = _by_key(_files(od, (".png",)), od) if od.is_dir() else {}
                seq[kind] = (m, om)
        return seq

    def _pair(self, folder: Path, exts, keys: list[str], what: str, name: str, label_dir: Path) -> list[Path]:
        files = _files(folder, exts)
        n_all = len(files)
        m = _by_key(files, folder)
        if self.max_frames is None and n_all != len(keys):
            raise V2VError(
                f"sequence '{name}': {len(keys)} label maps in {label_dir} but {n_all} {what} in {folder}"
            )
        out = []
        for k in keys:
            if k not in m:
                raise V2VError(
                    f"sequence '{name}': no {what} for label map '{k}' in {folder} "
                    f"({len(keys)} label maps, {n_all} {what})"
                )
            out.append(m[k])
        return out

    def __len__(self) -> int:
        return len(self.items)

    def frame_ids(self, index: int) -> list[int]:
        si, st = self.items[index]
        n = len(self.seqs[si]["labels"])
        if self.n_frames is None:
            return list(range(0, n, self.stride))
        return [st + k * self.stride for k in range(self.n_frames)]

    def _read_labels(self, path: Path) -> np.ndarray:
        a = read_label_map(path)
        if self.label_nc is not None and a.size and int(a.max()) >= self.label_nc:
            raise V2VError(
                f"{path}: label id {int(a.max())} >= label_nc={self.label_nc} "
                f"(max id in file {int(a.max())}; ids must be in [0, {self.label_nc - 1}])"
            )
        if a.size and int(a.min()) < 0:
            raise V2VError(f"{path}: negative label id {int(a.min())}")
        return a

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        seq = self.seqs[self.items[index][0]]
        ids = self.frame_ids(index)
        size = self.size
        labs = [self._read_labels(seq["labels"][i]) for i in ids]
        h0, w0 = labs[0].shape
        out_size = size or (h0, w0)
        for i, a in zip(ids, labs):
            if a.shape != (h0, w0):
                raise V2VError(
                    f"{seq['labels'][i]}: size {a.shape[1]}x{a.shape[0]} differs from the sequence's {w0}x{h0}"
                )
        item = {
            "labels": torch.from_numpy(np.stack([_resize_labels(a, size) for a in labs]).astype(np.int64)),
            "seq": seq["name"],
            "start": ids[0],
            "frame_ids": torch.tensor(ids, dtype=torch.long),
        }
        if seq["inst"] is not None:
            insts = []
            for i in ids:
                a = read_label_map(seq["inst"][i])
                if a.shape != (h0, w0):
                    raise V2VError(
                        f"{seq['inst'][i]}: size {a.shape[1]}x{a.shape[0]} differs from its label map's {w0}x{h0}"
                    )
                insts.append(_resize_labels(a, size))
            item["instances"] = torch.from_numpy(np.stack(insts).astype(np.int64))
        if seq["images"] is not None:
            imgs = []
            for i in ids:
                a = read_image(seq["images"][i])
                if a.shape[:2] != (h0, w0):
                    a = resize_image(a, (h0, w0))  # frames stored at another resolution than labels
                imgs.append(_resize_rgb(a, size))
            item["images"] = _rgb_tensor(imgs)
        if self.stride == 1 and len(ids) > 1:
            keys = [pairing_key(seq["labels"][i]) for i in ids]
            for kind, sel in (("flow", keys[:-1]), ("flowprev", keys[1:])):
                if kind not in seq:
                    continue
                fm, om = seq[kind]
                if not all(k in fm for k in sel):
                    continue
                flows = []
                for k in sel:
                    f = read_flo(fm[k])
                    if f.shape[:2] != (h0, w0):
                        raise V2VError(
                            f"{fm[k]}: flow size {f.shape[1]}x{f.shape[0]} differs from the label maps' {w0}x{h0}"
                        )
                    flows.append(_resize_flow(f, out_size if size else None))
                item[kind] = torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).contiguous()
                okey = "occ" if kind == "flow" else "occprev"
                if om and all(k in om for k in sel):
                    occ = [(_resize_labels(read_label_map(om[k]), size) > 127) for k in sel]
                    item[okey] = torch.from_numpy(np.stack(occ)[:, None].astype(np.float32))
        return item


class PairedImageDataset(torch.utils.data.Dataset):
    """Single-frame label -> image pairs in the pix2pixHD layout.

    ``root/{split}_label/*.png`` (label ids), ``{split}_img/*`` (RGB, optional: the Cityscapes
    ``test_*`` folders have none), ``{split}_inst/*.png`` (8/16-bit instance ids; official
    Cityscapes ``instanceIds`` are ``labelId*1000+k`` for instance pixels, the plain labelId
    elsewhere). Pairing by :func:`pairing_key` (``..._gtFine_labelIds`` <->
    ``..._leftImg8bit`` <-> ``..._gtFine_instanceIds``).

    Items: ``labels`` ``LongTensor H,W``, ``instances`` ``LongTensor H,W`` (when used),
    ``images`` ``FloatTensor 3,H,W`` in [0,1] (when present), ``name`` (pairing key).
    ``label_nc``/``use_instance``/``size`` as in :class:`LabelSequenceDataset`.
    """

    def __init__(
        self,
        root,
        split: str = "train",
        label_nc: int | None = None,
        use_instance: bool | None = None,
        size=None,
    ):
        self.root = Path(root)
        self.split = split
        self.label_nc = label_nc
        self.size = _size_hw(size)
        dl = self.root / f"{split}_label"
        if not dl.is_dir():
            raise V2VError(f"{dl}: label folder not found (expected {split}_label/*.png under {self.root})")
        labels = _files(dl, (".png", ".bmp", ".tif", ".tiff", ".pgm"))
        if not labels:
            raise V2VError(f"{dl}: contains no label maps (*.png)")
        _by_key(labels, dl)
        self.labels = labels
        self.keys = [pairing_key(p) for p in labels]
        di, dimg = self.root / f"{split}_inst", self.root / f"{split}_img"
        if use_instance is None:
            use_instance = di.is_dir()
        self.use_instance = bool(use_instance)
        self.images = self._pair(dimg, IMAGE_EXTENSIONS, "images", dl) if dimg.is_dir() else None
        if self.use_instance:
            if not di.is_dir():
                raise V2VError(f"{di}: instance folder not found (use_instance=True)")
            self.inst = self._pair(di, (".png", ".tif", ".tiff", ".pgm"), "instance maps", dl)
        else:
            self.inst = None

    def _pair(self, folder: Path, exts, what: str, dl: Path) -> list[Path]:
        files = _files(folder, exts)
        if len(files) != len(self.keys):
            raise V2VError(f"{len(self.keys)} label maps in {dl} but {len(files)} {what} in {folder}")
        m = _by_key(files, folder)
        missing = [k for k in self.keys if k not in m]
        if missing:
            raise V2VError(f"{folder}: no {what} for label map '{missing[0]}' ({len(missing)} unmatched)")
        return [m[k] for k in self.keys]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        p = self.labels[index]
        a = read_label_map(p)
        if self.label_nc is not None and a.size and int(a.max()) >= self.label_nc:
            raise V2VError(
                f"{p}: label id {int(a.max())} >= label_nc={self.label_nc} (max id in file {int(a.max())})"
            )
        h0, w0 = a.shape
        item = {
            "labels": torch.from_numpy(_resize_labels(a, self.size).astype(np.int64)),
            "name": self.keys[index],
        }
        if self.inst is not None:
            b = read_label_map(self.inst[index])
            if b.shape != (h0, w0):
                raise V2VError(
                    f"{self.inst[index]}: size {b.shape[1]}x{b.shape[0]} differs from its label map's {w0}x{h0}"
                )
            item["instances"] = torch.from_numpy(_resize_labels(b, self.size).astype(np.int64))
        if self.images is not None:
            img = read_image(self.images[index])
            if img.shape[:2] != (h0, w0):
                img = resize_image(img, (h0, w0))
            item["images"] = _rgb_tensor([_resize_rgb(img, self.size)])[0]
        return item


# --------------------------------------------------------------------------------------------
# video folders (FOMM)


def _has_images(d: Path) -> bool:
    return any(c.suffix.lower() in IMAGE_EXTENSIONS and not c.name.startswith(".") for c in d.iterdir())


def _has_images(d: Path) -> bool:
    return any(c.suffix.lower() in IMAGE_EXTENSIONS and not c.name.startswith(".") for c in d.iterdir())


def _list_videos(folder: Path) -> list[tuple[str, Path]]:
    """``(name, path)`` of every video under ``folder``: files, frame folders, ``<v>/frames/``."""
    out = []
    for p in folder.iterdir():
        if p.name.startswith("."):
            continue
        suf = p.suffix.lower()
        if p.is_file() and (suf in VIDEO_EXTENSIONS or suf in IMAGE_EXTENSIONS):
            out.append((p.stem, p))
        elif p.is_dir():
            if _has_images(p):
                out.append((p.name, p))
            elif (p / "frames").is_dir() and _has_images(p / "frames"):
                out.append((p.name, p / "frames"))  # v2v synthetic layout: <video>/frames/*.png
    return sorted(out, key=lambda e: natural_key(e[0]))


class _Strip:
    """FOMM's "image of concatenated frames": frames of width ``fw`` side by side in one image."""

    def __init__(self, path: Path, frame_width: int | None):
        self.path = path
        self.img = read_image(path)
        h, w = self.img.shape[:2]
        fw = int(frame_width or h)  # FOMM strips hold square frames
        if fw <= 0 or w % fw:
            raise V2VError(f"{path}: width {w} is not a multiple of the frame width {fw} (strip of frames)")
        self.fw = fw
        self.num_frames = w // fw

    def read(self, ids):
        return np.stack([self.img[:, i * self.fw : (i + 1) * self.fw] for i in ids])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class VideoFolderDataset(torch.utils.data.Dataset):
    """Videos for motion transfer (FOMM layout): ``root/<split>/<video>.mp4`` or ``<video>/`` frames.

    ``split=None`` uses the videos directly under ``root``. Each entry is a video file
    (mp4/mov/avi/webm/mkv/gif), a folder of frames (natural order; also ``<video>/frames/`` as
    written by ``v2v.data.synthetic``), or - as in FOMM - one image holding the frames side by side (width ``strip_frame_width``, default the image height,
    i.e. square frames).

    Modes:
      * ``"pairs"`` (FOMM training): two frame indices drawn uniformly *with replacement* and
        sorted (source first), exactly FOMM's ``np.sort(np.random.choice(n, 2))``. Item:
        ``source``, ``driving`` (float ``3,H,W`` in [0,1]), ``name``, ``frame_ids``
        (``LongTensor 2``).
      * ``"clips"``: ``n_frames`` frames ``stride`` apart from a random start; ``n_frames=None``
        gives the whole video from frame 0 (FOMM's test-time reconstruction input). Item:
        ``video`` (float ``T,3,H,W``), ``name``, ``frame_ids``.

    ``repeats`` multiplies the epoch length (FOMM's ``DatasetRepeater``: item ``i`` uses video
    ``i % num_videos``; unlike FOMM, a broken video raises instead of being retried forever).
    ``size = (H, W)`` resizes every frame (INTER_AREA; anisotropic for another aspect ratio, as
    FOMM does); ``None`` keeps the native size.

    ``augment`` (all off by default; FOMM's vox config corresponds to
    ``dict(flip=True, time_flip=True, jitter=dict(brightness=0.1, contrast=0.1, saturation=0.1,
    hue=0.1))``): ``flip`` horizontal flip with p=0.5; ``time_flip`` reverses the frame order
    with p=0.5 (swaps source and driving); ``jitter`` colour jitter in torchvision semantics
    (brightness/contrast/saturation factors uniform in ``[1-v, 1+v]``, hue shift uniform in
    ``[-v, v]`` turns, applied in that order with :mod:`kornia.enhance`; a number means the
    same v for all four). The parameters are drawn once per item and applied identically to
    every frame (source and driving alike). The random draws always happen in the same order
    (frames, flip, time flip, jitter), so enabling an augmentation does not change which frames
    are sampled.

    Randomness: ``seed=None`` uses torch's global RNG (seeded per item by the trainer);
    ``seed=int`` makes ``ds[i]`` a pure function of (seed, epoch, i); see :meth:`set_epoch`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        mode: str = "pairs",
        n_frames: int | None = 2,
        size=(256, 256),
        repeats: int = 1,
        augment: dict | None = None,
        split: str | None = None,
        stride: int = 1,
        seed: int | None = None,
        strip_frame_width: int | None = None,
    ):
        if mode not in ("pairs", "clips"):
            raise V2VError(f"VideoFolderDataset: unknown mode '{mode}' (valid: pairs, clips)")
        self.root = Path(root)
        folder = self.root if split is None else self.root / split
        if not folder.is_dir():
            raise V2VError(f"{folder}: video folder not found")
        entries = _list_videos(folder)
        self.names = [n for n, _ in entries]
        self.videos = [p for _, p in entries]
        if not self.videos:
            raise V2VError(
                f"{folder}: contains no videos (expected *.mp4/*.mov/*.avi/*.webm/*.mkv/*.gif, "
                "frame folders or frame-strip images)"
            )
        self.mode = mode
        self.n_frames = None if n_frames is None else int(n_frames)
        if mode == "clips" and self.n_frames is not None and self.n_frames < 1:
            raise V2VError(f"VideoFolderDataset: n_frames must be >= 1 or None, got {n_frames}")
        self.size = _size_hw(size)
        self.repeats = int(repeats)
        if self.repeats < 1:
            raise V2VError(f"VideoFolderDataset: repeats must be >= 1, got {repeats}")
        self.stride = int(stride)
        if self.stride < 1:
            raise V2VError(f"VideoFolderDataset: stride must be >= 1, got {stride}")
        self.seed = seed
        self.epoch = 0
        self.strip_frame_width = strip_frame_width
        aug = dict(augment or {})
        unknown = set(aug) - {"flip", "time_flip", "jitter"}
        if unknown:
            raise V2VError(
                f"VideoFolderDataset: unknown augment key(s) {sorted(unknown)} (valid: flip, time_flip, jitter)"
            )
        self.flip = bool(aug.get("flip", False))
        self.time_flip = bool(aug.get("time_flip", False))
        jit = aug.get("jitter") or {}
        if isinstance(jit, (int, float)):
            jit = {"brightness": jit, "contrast": jit, "saturation": jit, "hue": jit}
        bad = set(jit) - {"brightness", "contrast", "saturation", "hue"}
        if bad:
            raise V2VError(
                f"VideoFolderDataset: unknown jitter key(s) {sorted(bad)} "
                "(valid: brightness, contrast, saturation, hue)"
            )
        self.jitter = {k: float(jit.get(k, 0.0)) for k in ("brightness", "contrast", "saturation", "hue")}
        self._counts: dict[int, int] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws ``ds[i]`` returns (only matters with ``seed``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos) * self.repeats

    def _generator(self, index: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        s = np.random.SeedSequence([int(self.seed) & 0xFFFFFFFF, self.epoch, index]).generate_state(
            2, np.uint32
        )
        return torch.Generator().manual_seed(int(s[0]) << 32 | int(s[1]))

    def _open(self, path: Path):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            return _Strip(path, self.strip_frame_width)
        return open_video(path)

    def _count(self, vi: int, reader) -> int:
        if vi not in self._counts:
            n = reader.num_frames
            if n is None:
                n = sum(1 for _ in reader)
            self._counts[vi] = int(n)
        return self._counts[vi]

    def _sample_ids(self, n: int, g, path: Path) -> list[int]:
        if n < 1:
            raise V2VError(f"{path}: contains no frames")
        if self.mode == "pairs":
            return sorted(int(i) for i in torch.randint(0, n, (2,), generator=g))
        if self.n_frames is None:
            torch.rand(1, generator=g)  # keep the draw count fixed
            return list(range(0, n, self.stride))
        span = (self.n_frames - 1) * self.stride + 1
        if n < span:
            raise V2VError(
                f"{path}: has {n} frames, fewer than the {span} a clip of n_frames={self.n_frames} "
                f"with stride={self.stride} needs"
            )
        st = int(torch.randint(0, n - span + 1, (1,), generator=g))
        return [st + k * self.stride for k in range(self.n_frames)]

    def _jitter(self, x: torch.Tensor, g) -> torch.Tensor:
        u = torch.rand(4, generator=g)  # always drawn (fixed draw order)
        j = self.jitter
        if not any(j.values()):
            return x
        import kornia.enhance as KE

        b = 1 + j["brightness"] * (2 * float(u[0]) - 1)
        c = 1 + j["contrast"] * (2 * float(u[1]) - 1)
        s = 1 + j["saturation"] * (2 * float(u[2]) - 1)
        h = j["hue"] * (2 * float(u[3]) - 1)
        if j["brightness"]:
            x = (x * b).clamp(0, 1)
        if j["contrast"]:
            x = KE.adjust_contrast_with_mean_subtraction(x, c).clamp(0, 1)
        if j["saturation"]:
            x = KE.adjust_saturation(x, s).clamp(0, 1)
        if j["hue"]:
            x = KE.adjust_hue(x, h * 2 * np.pi).clamp(0, 1)
        return x

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        vi = index % len(self.videos)
        path = self.videos[vi]
        g = self._generator(index)
        with self._open(path) as r:
            n = self._count(vi, r)
            ids = self._sample_ids(n, g, path)
            frames = r.read(ids)
        flip = bool(torch.rand(1, generator=g) < 0.5)
        tflip = bool(torch.rand(1, generator=g) < 0.5)
        if self.size is not None:
            frames = [resize_image(f, self.size) for f in frames]
        x = _rgb_tensor(list(frames))  # T,3,H,W
        if self.flip and flip:
            x = x.flip(-1)
        if self.time_flip and tflip:
            x = x.flip(0)
            ids = ids[::-1]
        x = self._jitter(x, g)
        item = {
            "name": self.names[vi],
            "frame_ids": torch.tensor(ids, dtype=torch.long),
        }
        if self.mode == "pairs":
            item["source"], item["driving"] = x[0], x[1]
        else:
            item["video"] = x
        return item
