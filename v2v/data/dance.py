"""Everybody Dance Now data: frame pairs with rendered pose labels and face boxes.

Two layouts (both give the same items, see :class:`DancePairDataset`):

- v2v / puppets folders ``{root}/{split}/<video>/{openpose,frames}/`` (poses rendered on the fly
  as EDN's ``graph_train.py`` does, Sec. 3 of Chan et al. 2019): :class:`DancePairDataset`;
- the official data-prep output ``{root}/{split}_label``, ``{split}_img``, ``{split}_facetexts128``:
  :class:`EDNFolderDataset`.

:func:`build_dance_dataset` picks one from the folder layout.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from v2v.data.video import natural_key
from v2v.errors import V2VError

__all__ = ["DanceDataConfig", "DancePairDataset", "EDNFolderDataset", "build_dance_dataset"]


@dataclass
class DanceDataConfig:
    """``data:`` section: puppets-style folders ``{root}/{split}/<video>/{openpose,frames}/``."""

    root: str = "data/puppets"
    size: list[int] | None = None  # [H, W] of labels/frames; None = the frames' size
    canvas_height: int | None = 256  # render canvas height (None = official 1080x1920 letterbox)
    map_25_to_23: bool = True
    num_face_keypoints: int = 8
    face_box: list[int] | None = None  # [h, w] of the face box; None = 128 at 512 rows, scaled
    max_videos: int | None = None
    max_frames: int | None = None
    stride: int = 1  # frame step between the two frames of a pair



class DancePairDataset(torch.utils.data.Dataset):
    """Consecutive frame pairs from puppets-style folders ``{root}/{split}/<video>/``:
    ``openpose/*_keypoints.json`` (OpenPose JSON or EDN ``*_pose.yml``) and ``frames/*.png|jpg``.

    Poses are rendered to label images as EDN does (:func:`v2v.data.pose_render.render_label`,
    with a canvas of the frame's aspect ratio so labels align with frames, or the official
    letterboxed 1080x1920 canvas when ``canvas_height`` is None) when an item is first read; small
    datasets keep the rendered uint8 frames in memory (``cache_mb``). Items: ``label0, label1,
    image0, image1`` (``3,H,W`` float in [0,1]), ``face_box`` (``4`` long, from frame t, used for
    both frames as the official training does), ``video`` index.
    """

    def __init__(self, cfg: DanceDataConfig, split: str = "train", need_face_box: bool = True,
                 cache_mb: float = 512.0):
        from v2v.data.pose import list_pose_files

        base = os.path.join(cfg.root, split)
        if not os.path.isdir(base):
            raise V2VError(f"dance data: split folder not found: {base}")
        videos = sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d, "frames")))
        if cfg.max_videos:
            videos = videos[: cfg.max_videos]
        if not videos:
            raise V2VError(f"dance data: no '<video>/frames' folders under {base}")
        self.cfg, self.need_face_box = cfg, need_face_box
        self.items, self.videos = [], []
        for vi, v in enumerate(videos):
            vdir = os.path.join(base, v)
            frame_files = sorted((f for f in os.listdir(os.path.join(vdir, "frames"))
                                  if f.lower().endswith((".png", ".jpg", ".jpeg"))), key=natural_key)
            pose_files = list_pose_files(os.path.join(vdir, "openpose"))
            if len(frame_files) != len(pose_files):
                raise V2VError(f"{vdir}: {len(frame_files)} frames but {len(pose_files)} pose files")
            n = len(frame_files) if not cfg.max_frames else min(cfg.max_frames, len(frame_files))
            self.videos.append([(os.path.join(vdir, "frames", frame_files[t]), pose_files[t]) for t in range(n)])
            for t in range(n - cfg.stride):
                self.items.append((vi, t, t + cfg.stride))
        if not self.items:
            raise V2VError(f"dance data: no frame pairs under {base} (need >= {cfg.stride + 1} frames per video)")
        n_frames = sum(len(v) for v in self.videos)
        h, w = cfg.size if cfg.size else (512, 1024)
        self._cache = {} if n_frames * h * w * 6 / 2**20 <= cache_mb else None

    def frame(self, vi: int, t: int):
        """``(label uint8 H,W,3, image uint8 H,W,3, face box)`` of frame t of video vi."""
        key = (vi, t)
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        import cv2

        from v2v.data.pose import read_pose
        from v2v.data.pose_render import canvas_shape_for, render_label

        cfg = self.cfg
        fpath, ppath = self.videos[vi][t]
        img = cv2.imread(fpath, cv2.IMREAD_COLOR)
        if img is None:
            raise V2VError(f"cannot read frame {fpath}")
        img = np.ascontiguousarray(img[:, :, ::-1])
        fh, fw = img.shape[:2]
        out_hw = tuple(cfg.size) if cfg.size else (fh, fw)
        if img.shape[:2] != out_hw:
            img = cv2.resize(img, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_AREA)
        pose = read_pose(ppath)
        if pose is None:
            raise V2VError(f"{ppath}: no person in this frame")
        lab, box = render_label(pose, (fh, fw), out_hw, canvas_shape_for((fh, fw), cfg.canvas_height),
                                cfg.num_face_keypoints, cfg.map_25_to_23, with_box=True,
                                box_hw=tuple(cfg.face_box) if cfg.face_box else None,
                                strict_box=self.need_face_box)
        out = (np.array(lab), img, box)
        if self._cache is not None:
            self._cache[key] = out
        return out

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        vi, a, b = self.items[i]
        la, ia, box = self.frame(vi, a)
        lb, ib, _ = self.frame(vi, b)

        def t(x):
            return torch.from_numpy(np.array(x)).permute(2, 0, 1).float() / 255.0

        return {"label0": t(la), "label1": t(lb), "image0": t(ia), "image1": t(ib),
                "face_box": torch.tensor(box, dtype=torch.long), "video": torch.tensor(vi)}


class EDNFolderDataset(torch.utils.data.Dataset):
    """Pairs from the official EDN data-prep layout (``graph_train.py`` output), ``dataroot`` =
    ``cfg.root``: ``{split}_label/*.png`` (rendered labels), ``{split}_img/*.png`` (frames) and
    ``{split}_facetexts128/*.txt`` (``miny maxy minx maxx``). Labels are resized with NEAREST and
    images with BICUBIC to ``cfg.size`` (face boxes scaled alike), as the official loader does.
    Items as :class:`DancePairDataset`. A frame without its face-box file is a V2VError when
    ``need_face_box``."""

    def __init__(self, cfg: DanceDataConfig, split: str = "train", need_face_box: bool = True):
        self.cfg, self.need_face_box = cfg, need_face_box
        self.ldir = os.path.join(cfg.root, f"{split}_label")
        self.idir = os.path.join(cfg.root, f"{split}_img")
        self.bdir = os.path.join(cfg.root, f"{split}_facetexts128")
        names = sorted((f for f in os.listdir(self.ldir) if f.lower().endswith(".png")), key=natural_key)
        if cfg.max_frames:
            names = names[: cfg.max_frames]
        self.names = names
        self.items = [(t, t + cfg.stride) for t in range(len(names) - cfg.stride)]
        if not self.items:
            raise V2VError(f"{self.ldir}: need at least {cfg.stride + 1} label images")

    def __len__(self):
        return len(self.items)

    def _frame(self, t):
        import cv2

        name = self.names[t]
        stem = os.path.splitext(name)[0]
        lab = cv2.imread(os.path.join(self.ldir, name), cv2.IMREAD_COLOR)
        img = None
        for ext in (".png", ".jpg"):
            if os.path.isfile(os.path.join(self.idir, stem + ext)):
                img = cv2.imread(os.path.join(self.idir, stem + ext), cv2.IMREAD_COLOR)
        if lab is None or img is None:
            raise V2VError(f"{self.cfg.root}: cannot read label/image pair '{stem}' ({self.ldir}, {self.idir})")
        h, w = lab.shape[:2]
        oh, ow = tuple(self.cfg.size) if self.cfg.size else (h, w)
        if (h, w) != (oh, ow):
            lab = cv2.resize(lab, (ow, oh), interpolation=cv2.INTER_NEAREST)
        if img.shape[:2] != (oh, ow):
            img = cv2.resize(img, (ow, oh), interpolation=cv2.INTER_CUBIC)
        box = [0, 0, 0, 0]
        bpath = os.path.join(self.bdir, stem + ".txt")
        if os.path.isfile(bpath):
            with open(bpath, encoding="utf-8") as f:
                vals = f.read().split()
            if len(vals) != 4:
                raise V2VError(f"{bpath}: expected 4 integers 'miny maxy minx maxx', got {' '.join(vals)!r}")
            miny, maxy, minx, maxx = (int(float(v)) for v in vals)
            box = [miny * oh // h, maxy * oh // h, minx * ow // w, maxx * ow // w]
        elif self.need_face_box:
            raise V2VError(f"missing face box: {bpath} not found (the face generator/discriminator needs "
                           f"one 'miny maxy minx maxx' file per frame; run `v2v pose render --facetexts`)")

        def t_(x):
            return torch.from_numpy(np.ascontiguousarray(x[:, :, ::-1])).permute(2, 0, 1).float() / 255.0

        return t_(lab), t_(img), torch.tensor(box, dtype=torch.long)

    def __getitem__(self, i):
        a, b = self.items[i]
        la, ia, box = self._frame(a)
        lb, ib, _ = self._frame(b)
        return {"label0": la, "label1": lb, "image0": ia, "image1": ib, "face_box": box, "video": torch.tensor(0)}




def build_dance_dataset(cfg: DanceDataConfig, split: str, need_face_box: bool = True):
    """The dataset of ``split`` for the layout found under ``cfg.root``; None for a missing
    held-out split (the trainer then skips evaluation); V2VError for a missing train split."""
    if os.path.isdir(os.path.join(cfg.root, f"{split}_label")):
        return EDNFolderDataset(cfg, split, need_face_box=need_face_box)
    if split != "train" and not os.path.isdir(os.path.join(cfg.root, split)):
        return None
    return DancePairDataset(cfg, split, need_face_box=need_face_box)
