"""OpenPose keypoint files: parsing, named joints and layout conversion.

Formats read
------------
- OpenPose JSON (``--write_json``): ``{"people": [{"pose_keypoints_2d": [...], "face_keypoints_2d":
  [...], "hand_right_keypoints_2d": [...], "hand_left_keypoints_2d": [...]}]}``. The body layout is
  told by its length: 75 = BODY_25, 69 = BODY_23, 54 = COCO-18.
- OpenPose / Everybody-Dance-Now OpenCV-FileStorage YAML (``--write_keypoint``): one file per part,
  ``<stem>_pose.yml``, ``<stem>_face.yml``, ``<stem>_hand_right.yml``, ``<stem>_hand_left.yml``, each
  holding ``<name>_0: !!opencv-nd-matrix`` with ``sizes: [ P, K, 3 ]`` and ``data: [ ... ]``.
  PyYAML cannot read these (``%YAML:1.0``); they are parsed as text the way the official EDN code
  does, with Python ``float()``, so values are bit-identical to the official float64 keypoints.

Conventions
-----------
Keypoints here are **pixel** coordinates of the source frame, float64 arrays ``(K, 3)`` holding
``(x, y, confidence)``: x to the right, y down, origin at the top-left pixel. An undetected joint is
``(0, 0, 0)``; confidence 0 always means "missing". A keypoint whose x, y or confidence is NaN or
±Inf, or whose coordinate lies beyond ±1e5 px (e.g. ``1e308``, or an integer too large for a float),
is treated the same way, as undetected (set to ``(0, 0, 0)``), with one warning per file giving the
count (:func:`sanitize_keypoints`); the file is not refused. (Normalized ``B,K,2`` [-1,1] keypoints, the
library-wide convention, are produced by :meth:`PoseFrame.normalized`.) Face arrays are ``(70, 3)``,
hand arrays ``(21, 3)``; a part that the file does not have is all zeros (undetected).

Errors are :class:`v2v.errors.V2VError` naming the file and what was expected.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from v2v.errors import V2VError

__all__ = [
    "BODY25_TO_BODY23",
    "BODY_23",
    "BODY_25",
    "COCO_18",
    "FACE_70",
    "FORMAT_BY_COUNT",
    "HAND_21",
    "JOINT_NAMES",
    "PoseFrame",
    "find_pose_sequences",
    "frame_key",
    "list_pose_files",
    "map_body25_to_body23",
    "read_openpose_json",
    "read_openpose_yml",
    "read_pose",
    "read_pose_sequence",
    "sanitize_keypoints",
    "write_openpose_json",
]

BODY_25 = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
           "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
           "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")
#: EDN's 23-joint order (the official ``map_25_to_23``); no heels.
BODY_23 = ("Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
           "RHip", "RKnee", "RAnkle", "RBigToe", "RSmallToe", "LHip", "LKnee", "LAnkle", "LBigToe",
           "LSmallToe", "Nose", "REye", "REar", "LEye", "LEar")
COCO_18 = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip",
           "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar")
FACE_70 = 70
HAND_21 = ("Wrist", "Thumb1", "Thumb2", "Thumb3", "Thumb4", "Index1", "Index2", "Index3", "Index4",
           "Middle1", "Middle2", "Middle3", "Middle4", "Ring1", "Ring2", "Ring3", "Ring4",
           "Pinky1", "Pinky2", "Pinky3", "Pinky4")
JOINT_NAMES = {"BODY_25": BODY_25, "BODY_23": BODY_23, "COCO_18": COCO_18}
FORMAT_BY_COUNT = {25: "BODY_25", 23: "BODY_23", 18: "COCO_18"}
#: BODY_25 index of each BODY_23 joint.
BODY25_TO_BODY23 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 22, 23, 12, 13, 14, 19, 20, 0, 15, 17, 16, 18)

_PARTS = ("body", "face", "hand_right", "hand_left")
_JSON_KEYS = {"body": "pose_keypoints_2d", "face": "face_keypoints_2d",
              "hand_right": "hand_right_keypoints_2d", "hand_left": "hand_left_keypoints_2d"}
_PART_SIZES = {"face": 70, "hand_right": 21, "hand_left": 21}


def _zeros(k: int) -> np.ndarray:
    return np.zeros((k, 3), dtype=np.float64)


@dataclass
class PoseFrame:
    """One person's OpenPose keypoints in one frame (pixel coordinates, float64 ``(K,3)`` x,y,c).

    ``format`` is ``"BODY_25"``, ``"BODY_23"`` or ``"COCO_18"``. ``num_people`` is how many people
    the file held (the arrays are the first person's; ``others`` holds the rest as PoseFrames).
    ``source`` is the file the frame was read from (for error messages).
    """

    body: np.ndarray
    face: np.ndarray = field(default_factory=lambda: _zeros(70))
    hand_right: np.ndarray = field(default_factory=lambda: _zeros(21))
    hand_left: np.ndarray = field(default_factory=lambda: _zeros(21))
    format: str = "BODY_25"
    num_people: int = 1
    source: str = ""
    others: list = field(default_factory=list)

    @property
    def names(self) -> tuple[str, ...]:
        return JOINT_NAMES[self.format]

    def joint(self, name: str) -> np.ndarray:
        """``(x, y, c)`` of the named body joint (e.g. ``"LAnkle"``)."""
        names = self.names
        if name not in names:
            from v2v.errors import unknown_key_message

            raise V2VError(unknown_key_message(f"{self.format} joint", name, names))
        return self.body[names.index(name)]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def to_body23(self) -> PoseFrame:
        """BODY_25 -> BODY_23 with the official mapping (other formats are returned unchanged)."""
        if self.format != "BODY_25":
            return self
        return replace(self, body=map_body25_to_body23(self.body), format="BODY_23",
                       others=[o.to_body23() for o in self.others])

    def parts(self) -> dict[str, np.ndarray]:
        return {p: getattr(self, p) for p in _PARTS}

    def map_points(self, fn) -> PoseFrame:
        """Apply ``fn(xy (N,2)) -> (N,2)`` to every keypoint of every part (confidence unchanged,
        undetected points moved too, as the official code does)."""
        out = {}
        for p, a in self.parts().items():
            b = a.copy()
            if len(b):
                b[:, :2] = fn(b[:, :2])
            out[p] = b
        return replace(self, **out)

    def normalized(self, frame_hw: tuple[int, int]) -> np.ndarray:
        """Body keypoints as ``(K, 2)`` float32 in [-1,1] (x first; align_corners=True pixel
        centers: -1 = first pixel column/row, +1 = last)."""
        h, w = frame_hw
        xy = self.body[:, :2].astype(np.float64)
        out = np.empty_like(xy)
        out[:, 0] = xy[:, 0] / max(w - 1, 1) * 2 - 1
        out[:, 1] = xy[:, 1] / max(h - 1, 1) * 2 - 1
        return out.astype(np.float32)

    def flat(self, part: str = "body") -> list[float]:
        """The official flat list ``[x0, y0, c0, x1, ...]`` of a part."""
        return getattr(self, part).reshape(-1).tolist()


def map_body25_to_body23(body: np.ndarray) -> np.ndarray:
    """``(25,3)`` BODY_25 -> ``(23,3)`` BODY_23 (EDN's ``map_25_to_23``)."""
    body = np.asarray(body, dtype=np.float64)
    if body.shape != (25, 3):
        raise V2VError(f"map_body25_to_body23: expected (25, 3) BODY_25 keypoints, got {body.shape}")
    return body[list(BODY25_TO_BODY23)].copy()


def _body_format(n_values: int, path: str, what: str = "pose_keypoints_2d") -> str:
    if n_values % 3 == 0 and n_values // 3 in FORMAT_BY_COUNT:
        return FORMAT_BY_COUNT[n_values // 3]
    raise V2VError(f"{path}: {what} has {n_values} values; expected 75 (BODY_25), 69 (BODY_23) or "
                   f"54 (COCO-18) per person, i.e. 3 values (x, y, confidence) per keypoint")


#: Coordinates beyond this many pixels (any sign) are treated as undetected: no camera frame is
#: that large, and such values (1e308, integers too large for a float) overflow OpenCV's drawing.
MAX_COORD = 1e5


def _to_float(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise TypeError(v)
    try:
        return float(v)
    except OverflowError:  # an integer too large for a float
        return float("inf")


def sanitize_keypoints(arr: np.ndarray, path: str = "", what: str = "keypoints") -> np.ndarray:
    """Set keypoints with a non-finite value or a coordinate beyond :data:`MAX_COORD` to ``(0, 0, 0)``.

    This is how OpenPose marks an undetected point (confidence 0), so every later stage (drawing,
    normalisation, face boxes) skips them. Logs one warning per file with the number of points.

    Args:
        arr: ``(K, 3)`` float64 ``(x, y, confidence)``.
    Returns:
        the same array, fixed in place.
    """
    bad = ~np.isfinite(arr).all(axis=1) | (np.abs(arr[:, :2]) > MAX_COORD).any(axis=1)
    n = int(bad.sum())
    if n:
        arr[bad] = 0.0
        _warn_bad(path, what, n)
    return arr


#: total keypoints treated as undetected because of non-finite / out-of-range values (this process)
BAD_KEYPOINTS = {"count": 0, "files": 0}


def _warn_bad(path: str, what: str, n: int) -> None:
    import logging

    BAD_KEYPOINTS["count"] += n
    BAD_KEYPOINTS["files"] += 1
    logging.getLogger(__name__).warning(
        "%s: %d %s with non-finite or out-of-range (|x|,|y| > %g px) values treated as undetected "
        "(confidence 0)", path, n, what, MAX_COORD)


def _part_array(values, k: int, path: str, what: str) -> np.ndarray:
    if values is None or len(values) == 0:
        return _zeros(k)
    if len(values) != 3 * k:
        raise V2VError(f"{path}: {what} has {len(values)} values; expected {3 * k} ({k} keypoints x 3) or none")
    try:
        arr = np.asarray([_to_float(v) for v in values], dtype=np.float64).reshape(k, 3)
    except (TypeError, ValueError):
        raise V2VError(f"{path}: {what} holds a non-number value") from None
    return sanitize_keypoints(arr, path, what)


def read_openpose_json(path: str | os.PathLike) -> PoseFrame | None:
    """Read an OpenPose JSON file. Returns the first person (others in ``.others``) or None when
    the file holds no person. Missing face/hand arrays are all-zero (undetected)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise V2VError(f"pose file not found: {path}") from None
    except IsADirectoryError:
        raise V2VError(f"{path}: is a folder, expected an OpenPose JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise V2VError(f"{path}: not valid OpenPose JSON ({getattr(exc, 'msg', exc)}"
                       f"{f', line {exc.lineno}' if hasattr(exc, 'lineno') else ''})") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python's digit limit
        raise V2VError(f"{path}: not valid OpenPose JSON ({str(exc)[:120]})") from None
    except RecursionError:
        raise V2VError(f"{path}: not valid OpenPose JSON (nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise V2VError(f"{path}: not an OpenPose JSON file (expected a top-level object with a 'people' list)")
    frames = []
    for i, person in enumerate(data["people"]):
        if not isinstance(person, dict) or not isinstance(person.get("pose_keypoints_2d"), list):
            raise V2VError(f"{path}: people[{i}] has no 'pose_keypoints_2d' list")
        pose = person["pose_keypoints_2d"]
        fmt = _body_format(len(pose), path)
        k = len(pose) // 3
        arrays = {"body": _part_array(pose, k, path, f"people[{i}].pose_keypoints_2d")}
        for part, size in _PART_SIZES.items():
            vals = person.get(_JSON_KEYS[part])
            if vals is not None and not isinstance(vals, list):
                raise V2VError(f"{path}: people[{i}].{_JSON_KEYS[part]} must be a list")
            arrays[part] = _part_array(vals, size, path, f"people[{i}].{_JSON_KEYS[part]}")
        frames.append(PoseFrame(format=fmt, source=path, **arrays))
    if not frames:
        return None
    first = frames[0]
    first.num_people = len(frames)
    first.others = frames[1:]
    return first


_SIZES_RE = re.compile(r"sizes:\s*\[([^\]]*)\]")


def _read_yml_values(path: str) -> tuple[list[int] | None, list[float]]:
    """The official EDN text parser (``readkeypointsfile_yml``) plus the ``sizes`` header."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except FileNotFoundError:
        raise V2VError(f"pose file not found: {path}") from None
    except IsADirectoryError:
        raise V2VError(f"{path}: is a folder, expected an OpenCV YAML keypoint file") from None
    except UnicodeDecodeError:
        raise V2VError(f"{path}: not an OpenCV YAML keypoint file (binary content)") from None
    stripped = [ln.strip() for ln in lines]
    text = "".join(stripped)
    m = _SIZES_RE.search(text)
    sizes = None
    if m:
        try:
            sizes = [int(s) for s in m.group(1).replace(" ", "").split(",") if s]
        except ValueError:
            raise V2VError(f"{path}: bad 'sizes' entry {m.group(1)!r}") from None
    starts = [i for i, ln in enumerate(stripped) if ln.startswith("data")]
    if not starts:
        if sizes is not None and (not sizes or 0 in sizes):
            return sizes, []
        if lines and lines[0].startswith("%YAML") and len(stripped) <= 2:
            return [0], []  # OpenPose writes an empty file for a frame without people
        raise V2VError(f"{path}: not an OpenCV YAML keypoint file (no 'data: [' entry)")
    datastr = "".join(stripped[starts[0]:])
    body = datastr[datastr.index("[") + 1: datastr.rindex("]")] if "[" in datastr and "]" in datastr else None
    if body is None:
        raise V2VError(f"{path}: malformed 'data: [ ... ]' entry")
    try:
        values = [float(x.strip()) for x in body.split(",") if x.strip()]
    except ValueError:
        raise V2VError(f"{path}: 'data' holds a non-number value") from None
    if sizes is not None and any(v < 0 or v > 10**7 for v in sizes):
        raise V2VError(f"{path}: bad 'sizes' entry {sizes} (negative or absurdly large)")
    return sizes, values


def _yml_part(path: str, per_person: int | None, what: str) -> list[np.ndarray]:
    sizes, values = _read_yml_values(path)
    if not values:
        return []
    if per_person is None:  # body: the layout comes from the sizes header or the length
        if sizes and len(sizes) == 3 and sizes[2] == 3:
            k = sizes[1]
            if k not in FORMAT_BY_COUNT:
                _body_format(3 * k, path, what)
        else:
            k = len(values) // 3
            _body_format(len(values), path, what)
    else:
        k = per_person
    if len(values) % (3 * k) != 0:
        raise V2VError(f"{path}: {what} has {len(values)} values; expected a multiple of {3 * k} ({k} keypoints x 3)")
    if sizes and len(sizes) == 3 and sizes[0] * sizes[1] * sizes[2] != len(values):
        raise V2VError(f"{path}: 'sizes' {sizes} does not match the {len(values)} data values")
    arr = np.asarray(values, dtype=np.float64).reshape(-1, k, 3)
    return [sanitize_keypoints(a, path, what) for a in arr]


def _yml_stem(path: str) -> str:
    p = os.fspath(path)
    for suf in ("_pose.yml", "_face.yml", "_hand_right.yml", "_hand_left.yml", ".yml"):
        if p.endswith(suf):
            return p[: -len(suf)]
    return p


def read_openpose_yml(path: str | os.PathLike) -> PoseFrame | None:
    """Read ``<stem>_pose.yml`` (+ ``_face``, ``_hand_right``, ``_hand_left`` when present).

    ``path`` is the ``_pose.yml`` file or the stem. Returns None when the frame has no person.
    """
    stem = _yml_stem(os.fspath(path))
    pose_path = stem + "_pose.yml"
    if not os.path.isfile(pose_path):
        raise V2VError(f"pose file not found: {pose_path}")
    bodies = _yml_part(pose_path, None, "pose data")
    if not bodies:
        return None
    k = bodies[0].shape[0]
    fmt = FORMAT_BY_COUNT.get(k) or _body_format(3 * k, pose_path)
    parts = {}
    for part, size in _PART_SIZES.items():
        pth = f"{stem}_{part}.yml"
        arrs = _yml_part(pth, size, f"{part} data") if os.path.isfile(pth) else []
        parts[part] = arrs
    frames = []
    for i, b in enumerate(bodies):
        kw = {p: (parts[p][i] if i < len(parts[p]) else _zeros(_PART_SIZES[p])) for p in _PART_SIZES}
        frames.append(PoseFrame(body=b, format=fmt, source=pose_path, **kw))
    first = frames[0]
    first.num_people = len(frames)
    first.others = frames[1:]
    return first


def read_pose(path: str | os.PathLike) -> PoseFrame | None:
    """Read one frame's keypoints from ``.json`` or ``_pose.yml`` (see module docstring)."""
    p = os.fspath(path)
    low = p.lower()
    if low.endswith(".json"):
        return read_openpose_json(p)
    if low.endswith((".yml", ".yaml")):
        return read_openpose_yml(p)
    raise V2VError(f"{p}: unsupported pose file (expected OpenPose .json or OpenCV-YAML _pose.yml)")


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def frame_key(path: str) -> str:
    """The frame stem of a pose file: ``frame000100_keypoints.json`` -> ``frame000100``."""
    name = os.path.basename(os.fspath(path))
    for suf in ("_keypoints.json", ".json", "_pose.yml", ".yml"):
        if name.lower().endswith(suf.lower()):
            return name[: -len(suf)]
    return os.path.splitext(name)[0]


#: JSON files v2v writes beside pose files (not poses)
_NOT_POSE_FILES = {"meta.json", "norm_params.json", "config.json"}


def list_pose_files(folder: str | os.PathLike) -> list[str]:
    """Sorted (natural order) pose files of a folder: ``*.json`` or ``*_pose.yml``.

    A puppets-style video folder (with an ``openpose/`` subfolder) is accepted too.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise V2VError(f"pose folder not found: {folder}")
    if os.path.isdir(os.path.join(folder, "openpose")):
        folder = os.path.join(folder, "openpose")
    names = os.listdir(folder)
    files = [n for n in names if n.lower().endswith(".json") and n not in _NOT_POSE_FILES]
    if not files:
        files = [n for n in names if n.endswith("_pose.yml")]
    if not files:
        raise V2VError(f"{folder}: no OpenPose keypoint files (*.json or *_pose.yml)")
    return [os.path.join(folder, n) for n in sorted(files, key=_natural_key)]


def _has_pose_files(folder: str) -> bool:
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    if "openpose" in names and os.path.isdir(os.path.join(folder, "openpose")):
        return True
    return any((n.lower().endswith(".json") and n not in _NOT_POSE_FILES) or n.endswith("_pose.yml")
               for n in names)


def find_pose_sequences(root: str | os.PathLike, max_depth: int = 4) -> list[tuple[str, str]]:
    """``(relative path, folder)`` of every pose sequence under ``root``, in natural order.

    ``root`` is either one sequence (pose files directly in it, or a puppets-style ``openpose/``
    subfolder): ``[("", root)]``; or a dataset root of per-sequence folders, as OpenPose and
    DensePose datasets are laid out (``poses-openpose/<sequence>/*.json``, nested up to
    ``max_depth`` levels): one entry per folder that holds pose files, with its path relative to
    ``root`` so that outputs can mirror the structure. Hidden folders are skipped.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise V2VError(f"pose folder not found: {root}")
    if _has_pose_files(root):
        return [("", root)]
    found = []

    def walk(folder: str, depth: int):
        try:
            subs = sorted((e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")),
                          key=_natural_key)
        except OSError:
            return
        for name in subs:
            path = os.path.join(folder, name)
            if _has_pose_files(path):
                found.append((os.path.relpath(path, root), path))
            elif depth < max_depth:
                walk(path, depth + 1)

    walk(root, 1)
    if not found:
        raise V2VError(f"{root}: no OpenPose keypoint files (*.json or *_pose.yml), neither in it nor in "
                       "per-sequence subfolders")
    return found


def read_pose_sequence(folder: str | os.PathLike) -> list[PoseFrame | None]:
    """All frames of a pose folder in natural order (None for frames without a person)."""
    return [read_pose(p) for p in list_pose_files(folder)]


def write_openpose_json(path: str | os.PathLike, frame: PoseFrame | None) -> None:
    """Write one frame as OpenPose JSON (version 1.3), atomically."""
    from v2v.utils import atomic_write

    people = []
    if frame is not None:
        for fr in [frame, *frame.others]:
            people.append({
                "person_id": [-1],
                "pose_keypoints_2d": fr.body.reshape(-1).tolist(),
                "face_keypoints_2d": fr.face.reshape(-1).tolist() if fr.face[:, 2].any() else [],
                "hand_left_keypoints_2d": fr.hand_left.reshape(-1).tolist() if fr.hand_left[:, 2].any() else [],
                "hand_right_keypoints_2d": fr.hand_right.reshape(-1).tolist() if fr.hand_right[:, 2].any() else [],
                "pose_keypoints_3d": [], "face_keypoints_3d": [],
                "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": [],
            })
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump({"version": 1.3, "people": people}, f)


def _as_path(p) -> Path:
    return Path(os.fspath(p))
