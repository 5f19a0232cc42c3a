"""Pose extraction backends behind one interface.

``get_backend(name)`` returns an object with ``extract(source) -> PoseSequence``:

- ``openpose``: reads an OpenPose output folder (``*_keypoints.json`` or EDN ``*_pose.yml``); this
  is the standard path (run OpenPose yourself: ``--write_json DIR --face --hand``).
- ``puppets``: ground truth of a synthetic puppets video folder (``<video>/openpose/*.json`` +
  ``<video>/frames/*.png``), BODY_25.
- ``mediapipe``: runs MediaPipe Pose (``pip install 'v2v[pose]'``, mediapipe 0.10.21, whose
  wheel ships the pose model) on a video and maps its 33 landmarks to BODY_25 (no face/hands).

A :class:`PoseSequence` holds the frames (:class:`v2v.data.pose.PoseFrame`, pixel coordinates,
None where no person was found), the frame size ``(H, W)`` and the fps.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from v2v.data.pose import PoseFrame, list_pose_files, read_pose
from v2v.errors import V2VError, unknown_key_message

__all__ = [
    "BACKENDS",
    "MEDIAPIPE_TO_BODY25",
    "MediaPipeBackend",
    "OpenPoseFolderBackend",
    "PoseSequence",
    "PuppetsBackend",
    "extract_poses",
    "get_backend",
    "mediapipe_to_body25",
]


@dataclass
class PoseSequence:
    """Poses of a clip: ``frames[t]`` (None = no person), ``frame_hw`` (H, W), ``fps``."""

    frames: list
    frame_hw: tuple | None = None
    fps: float = 25.0
    source: str = ""
    names: list = field(default_factory=list)  # frame stems, for writing outputs

    def __len__(self):
        return len(self.frames)


def _image_hw(path: str):
    import cv2

    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise V2VError(f"cannot read image {path}")
    return tuple(img.shape[:2])


def _frames_folder_hw(folder: str):
    if not os.path.isdir(folder):
        return None
    imgs = sorted(f for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    return _image_hw(os.path.join(folder, imgs[0])) if imgs else None


class OpenPoseFolderBackend:
    """Reads OpenPose output files (JSON or EDN OpenCV-YAML) from a folder."""

    name = "openpose"

    def extract(self, source: str, frame_hw=None, fps: float | None = None) -> PoseSequence:
        from v2v.data.pose import frame_key

        files = list_pose_files(source)
        frames = [read_pose(p) for p in files]
        hw = tuple(frame_hw) if frame_hw else None
        if hw is None:  # a sibling frames/ folder (puppets / EDN layouts) tells the size
            for cand in (os.path.join(source, "frames"), os.path.join(os.path.dirname(os.path.abspath(source)), "frames"),
                         os.path.join(os.path.dirname(os.path.abspath(source)), "original_frames")):
                hw = _frames_folder_hw(cand)
                if hw:
                    break
        return PoseSequence(frames, hw, float(fps or 25.0), source, [frame_key(p) for p in files])


class PuppetsBackend(OpenPoseFolderBackend):
    """Ground-truth keypoints of a synthetic puppets video folder (``openpose/`` + ``frames/``)."""

    name = "puppets"

    def extract(self, source: str, frame_hw=None, fps: float | None = None) -> PoseSequence:
        if not os.path.isdir(os.path.join(source, "openpose")):
            raise V2VError(f"{source}: not a puppets video folder (no openpose/ subfolder)")
        if fps is None:
            try:
                from v2v.data.synthetic.puppets import FPS

                fps = FPS
            except ImportError:  # pragma: no cover
                fps = 15.0
        return super().extract(source, frame_hw, fps)


#: BODY_25 index <- MediaPipe Pose landmark index (None = derived: Neck, MidHip)
MEDIAPIPE_TO_BODY25 = {0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 9: 24, 10: 26, 11: 28, 12: 23, 13: 25,
                       14: 27, 15: 5, 16: 2, 17: 8, 18: 7, 19: 31, 20: 31, 21: 29, 22: 32, 23: 32, 24: 30}


def mediapipe_to_body25(landmarks: np.ndarray, frame_hw, min_visibility: float = 0.5) -> np.ndarray:
    """MediaPipe's 33 landmarks ``(33, 4)`` (x, y normalised to [0,1], z, visibility) -> BODY_25
    ``(25, 3)`` pixel keypoints. Neck = mid-shoulders, MidHip = mid-hips; small toes reuse the
    foot index; a joint with visibility < ``min_visibility`` is (0, 0, 0)."""
    h, w = frame_hw
    lm = np.asarray(landmarks, dtype=np.float64)
    out = np.zeros((25, 3))
    for b, m in MEDIAPIPE_TO_BODY25.items():
        x, y, vis = lm[m, 0] * w, lm[m, 1] * h, lm[m, 3]
        if vis >= min_visibility:
            out[b] = (x, y, vis)
    for b, (i, j) in {1: (11, 12), 8: (23, 24)}.items():
        if lm[i, 3] >= min_visibility and lm[j, 3] >= min_visibility:
            out[b] = ((lm[i, 0] + lm[j, 0]) / 2 * w, (lm[i, 1] + lm[j, 1]) / 2 * h, min(lm[i, 3], lm[j, 3]))
    return out


class MediaPipeBackend:
    """MediaPipe Pose on a video (optional extra ``v2v[pose]``)."""

    name = "mediapipe"

    def __init__(self):
        try:
            import mediapipe  # noqa: F401
        except ImportError:
            raise V2VError("pose extraction backend 'mediapipe' is not installed: install v2v[pose] "
                           "(pip install 'v2v[pose]', mediapipe 0.10.21), or run OpenPose and pass its JSON "
                           "folder instead") from None

    def extract(self, source: str, frame_hw=None, fps: float | None = None, progress=None) -> PoseSequence:
        import mediapipe as mp

        from v2v.data.video import open_video

        frames = []
        with open_video(source) as reader, mp.solutions.pose.Pose(static_image_mode=False) as pose:
            hw = (reader.size[1], reader.size[0])
            for img in reader:
                res = pose.process(np.ascontiguousarray(img))
                if res.pose_landmarks is None:
                    frames.append(None)
                else:
                    lm = np.array([(p.x, p.y, p.z, p.visibility) for p in res.pose_landmarks.landmark])
                    frames.append(PoseFrame(body=mediapipe_to_body25(lm, hw), format="BODY_25", source=source))
                if progress:
                    progress(1)
            rate = reader.fps
        return PoseSequence(frames, hw, float(fps or rate), source, [f"frame{t:06d}" for t in range(len(frames))])


BACKENDS = {"openpose": OpenPoseFolderBackend, "puppets": PuppetsBackend, "mediapipe": MediaPipeBackend}


def get_backend(name: str):
    """An extraction backend by name (``openpose``, ``puppets``, ``mediapipe``)."""
    if name not in BACKENDS:
        raise V2VError(unknown_key_message("pose backend", name, BACKENDS))
    return BACKENDS[name]()


def extract_poses(source: str, backend: str = "auto", frame_hw=None, fps=None) -> PoseSequence:
    """Poses of ``source``: a puppets video folder, an OpenPose output folder, or a video file
    (``auto``: folder -> puppets/openpose reader, file -> mediapipe)."""
    source = os.fspath(source)
    if backend == "auto":
        if os.path.isdir(source):
            backend = "puppets" if os.path.isdir(os.path.join(source, "openpose")) else "openpose"
        elif os.path.isfile(source):
            backend = "mediapipe"
        else:
            raise V2VError(f"pose source not found: {source}")
    return get_backend(backend).extract(source, frame_hw, fps)
