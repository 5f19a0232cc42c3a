"""Skeleton label images exactly as Everybody Dance Now renders them, and the face box.

The official pipeline (``data_prep/graph_train.py`` + ``renderopenpose.py``):

1. keypoints are moved into a 1080x1920 canvas (``scale_resize``: uniform scale + centring);
2. body circles (radius 8) and limbs (filled ellipses of half-width 4, blended 0.4/0.6 with
   ``cv2.addWeighted``), then sparse black face dots (radius 4), then hands (radius 3 / width 2) are
   drawn on a white canvas with OpenCV (colours are written as listed and the canvas is then read as
   BGR, so a listed (a,b,c) shows as RGB (c,b,a));
3. the canvas is resized with Pillow LANCZOS to ``2S x S`` (width x height).

:func:`render_label` reproduces this bit-exactly (checked against the official outputs in the EDN
fixtures). The limb blend is computed only inside each limb's bounding box, which gives the same
bytes as the official whole-image blend (a pixel blended with itself is unchanged) at a fraction of
the cost.

Images returned here are ``uint8 (H, W, 3) RGB`` numpy arrays; face boxes are ``(miny, maxy, minx,
maxx)`` integer pixel bounds (end exclusive) in label-image coordinates, the order of EDN's
``*_facetexts128`` files.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from v2v.data.pose import PoseFrame
from v2v.errors import V2VError

__all__ = [
    "BODY_COLORS",
    "BODY_LIMBS",
    "FACE_POINTS",
    "HAND_COLORS",
    "canvas_shape_for",
    "face_box",
    "face_center",
    "make_box",
    "render_canvas",
    "render_label",
    "scale_resize",
    "to_canvas",
]

_C23 = [[255, 0, 0], [255, 55, 0], [255, 110, 0], [255, 165, 0], [255, 215, 0], [255, 235, 0],
        [255, 255, 0], [255, 0, 0], [175, 255, 0], [85, 255, 0], [0, 255, 0], [0, 255, 85],
        [0, 255, 170], [25, 25, 128], [0, 85, 255], [0, 170, 255], [0, 212.5, 255], [0, 255, 255],
        [255, 0, 0], [255, 0, 255], [238, 130, 238], [138, 43, 226], [75, 0, 130]]
_L23 = [[0, 1], [1, 2], [2, 3], [0, 4], [4, 5], [5, 6], [0, 7], [7, 8], [8, 9], [9, 10], [10, 11],
        [10, 12], [7, 13], [13, 14], [14, 15], [15, 16], [15, 17], [0, 18], [18, 19], [19, 20],
        [18, 21], [21, 22]]
_C25 = [[255, 0, 85], [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0],
        [85, 255, 0], [0, 255, 0], [255, 0, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255],
        [0, 170, 255], [0, 85, 255], [0, 0, 255], [255, 0, 170], [170, 0, 255], [255, 0, 255],
        [85, 0, 255], [0, 0, 255], [0, 0, 255], [0, 0, 255], [0, 255, 255], [0, 255, 255],
        [0, 255, 255]]
_L25 = [[0, 1], [0, 15], [0, 16], [1, 2], [1, 5], [1, 8], [2, 3], [3, 4], [5, 6], [6, 7], [8, 9],
        [8, 12], [9, 10], [10, 11], [11, 22], [11, 24], [12, 13], [13, 14], [14, 19], [14, 21],
        [15, 17], [16, 18], [19, 20], [22, 23]]
_C18 = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
        [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
        [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85]]
_L18 = [[1, 2], [1, 5], [2, 3], [3, 4], [5, 6], [6, 7], [1, 8], [8, 9], [9, 10], [1, 11], [11, 12],
        [12, 13], [1, 0], [0, 14], [14, 16], [0, 15], [15, 17]]

#: colours as written into the (BGR-read) canvas, per format
BODY_COLORS = {"BODY_23": _C23, "BODY_25": _C25, "COCO_18": _C18}
BODY_LIMBS = {"BODY_23": _L23, "BODY_25": _L25, "COCO_18": _L18}
HAND_COLORS = [[230, 53, 40], [231, 115, 64], [233, 136, 31], [213, 160, 13], [217, 200, 19],
               [170, 210, 35], [139, 228, 48], [83, 214, 45], [77, 192, 46], [83, 213, 133],
               [82, 223, 190], [80, 184, 197], [78, 140, 189], [86, 112, 208], [83, 73, 217],
               [123, 46, 183], [189, 102, 255], [218, 83, 232], [229, 65, 189], [236, 61, 141],
               [255, 102, 145]]
_FACE8 = [27, 30, 8, 0, 16, 33, 68, 69]
#: face points drawn for ``num_face_keypoints`` 8 (default), 9 and 22
FACE_POINTS = {8: _FACE8, 9: _FACE8 + [62],
               22: [27, 30, 8, 0, 16, 31, 33, 35, 68, 69, 36, 39, 42, 45, 17, 21, 22, 26, 48, 51, 54, 57]}
#: (nose, right ear, left ear) per format, for the face box
_HEAD = {"BODY_23": (18, 20, 22), "BODY_25": (0, 17, 18), "COCO_18": (0, 16, 17)}


def scale_resize(frame_hw, canvas_hw=(1080, 1920)):
    """The official ``scale_resize``: ``(scale, tx, ty)`` moving frame pixels into the canvas
    (uniform scale, centred), or None when the frame already has the canvas size."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    ch, cw = canvas_hw
    if (h, w) == (ch, cw):
        return None
    xm = ch / float(h)
    ym = cw / float(w)
    if xm == ym:
        return xm, 0.0, 0.0
    if ym > xm:
        return xm, (cw - xm * float(w)) / 2.0, 0.0
    return ym, 0.0, (ch - ym * float(h)) / 2.0


def _limb(canvas: np.ndarray, p0, p1, width: int, color) -> np.ndarray:
    """Official limb: filled ellipse polygon blended 0.4/0.6 (computed in the bounding box)."""
    x0, y0 = p0
    x1, y1 = p1
    mx = (x0 + x1) / 2.0
    my = (y0 + y1) / 2.0
    length = ((y0 - y1) ** 2 + (x0 - x1) ** 2) ** 0.5
    angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
    poly = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), width), int(angle), 0, 360, 1)
    h, w = canvas.shape[:2]
    xa = max(int(poly[:, 0].min()) - 1, 0)
    xb = min(int(poly[:, 0].max()) + 2, w)
    ya = max(int(poly[:, 1].min()) - 1, 0)
    yb = min(int(poly[:, 1].max()) + 2, h)
    if xa >= xb or ya >= yb:
        return canvas
    roi = canvas[ya:yb, xa:xb]
    cur = roi.copy()
    cv2.fillConvexPoly(cur, poly - np.array([xa, ya], dtype=poly.dtype), color)
    canvas[ya:yb, xa:xb] = cv2.addWeighted(roi, 0.4, cur, 0.6, 0)
    return canvas


def _color(c):
    return tuple(float(v) if isinstance(v, float) else int(v) for v in c)


def _draw_body(canvas, body: np.ndarray, fmt: str) -> None:
    colors = BODY_COLORS[fmt]
    for k in range(body.shape[0]):
        if body[k, 2] > 0:
            cv2.circle(canvas, (int(body[k, 0]), int(body[k, 1])), 8, _color(colors[k]), thickness=-1)
    for a, b in BODY_LIMBS[fmt]:
        if body[a, 2] > 0 and body[b, 2] > 0:
            _limb(canvas, body[a, :2], body[b, :2], 4, _color(colors[a]))


def _draw_face(canvas, face: np.ndarray, num_face_keypoints: int, threshold: float = 0.2) -> None:
    if face.shape[0] != 70:
        return
    if face[:, 2].sum() / 70.0 < threshold:
        return
    for i in FACE_POINTS.get(num_face_keypoints, _FACE8):
        if face[i, 2] > 0:
            cv2.circle(canvas, (int(face[i, 0]), int(face[i, 1])), 4, (0, 0, 0), thickness=-1)


def _draw_hand(canvas, hand: np.ndarray, threshold: float = 0.05) -> None:
    if hand.shape[0] != 21:
        return
    for k in range(21):
        if hand[k, 2] > threshold:
            cv2.circle(canvas, (int(hand[k, 0]), int(hand[k, 1])), 3, tuple(HAND_COLORS[k]), thickness=-1)
    for r0 in (1, 5, 9, 13, 17):
        for a, b in ((r0, r0 + 1), (r0 + 1, r0 + 2), (r0 + 2, r0 + 3), (0, r0)):
            if hand[a, 2] > threshold and hand[b, 2] > threshold:
                _limb(canvas, hand[a, :2], hand[b, :2], 2, tuple(HAND_COLORS[b]))


def render_canvas(frame: PoseFrame, canvas_hw=(1080, 1920), num_face_keypoints: int = 8,
                  draw_face: bool = True, draw_hands: bool = True) -> np.ndarray:
    """Draw a frame whose keypoints are already in canvas pixels. Returns ``uint8 (H,W,3) RGB``
    (white background), the official full-resolution canvas read as RGB."""
    canvas = np.full((int(canvas_hw[0]), int(canvas_hw[1]), 3), 255, dtype=np.uint8)
    _draw_body(canvas, frame.body, frame.format)
    if draw_face:
        _draw_face(canvas, frame.face, num_face_keypoints)
    if draw_hands:
        _draw_hand(canvas, frame.hand_right)
        _draw_hand(canvas, frame.hand_left)
    return np.ascontiguousarray(canvas[:, :, ::-1])


def _lanczos(img: np.ndarray, out_hw) -> np.ndarray:
    from PIL import Image

    h, w = int(out_hw[0]), int(out_hw[1])
    if img.shape[:2] == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS))


def canvas_shape_for(frame_hw, canvas_height: int | None = None):
    """Canvas size for a frame: the official 1080x1920 when ``canvas_height`` is None, else a
    canvas of that height with the frame's aspect ratio (no letterbox: labels align with frames)."""
    if canvas_height is None:
        return (1080, 1920)
    h, w = frame_hw
    return (int(canvas_height), round(canvas_height * w / h))


def to_canvas(frame: PoseFrame, frame_hw, canvas_hw=(1080, 1920), map_25_to_23: bool = False):
    """Keypoints moved into canvas pixels (official ``scale_resize`` + ``fix_scale_coords``);
    returns ``(frame_in_canvas, (scale, tx, ty))``."""
    if map_25_to_23:
        frame = frame.to_body23()
    sr = scale_resize(frame_hw, canvas_hw)
    if sr is None:
        return frame, (1.0, 0.0, 0.0)
    s, tx, ty = sr
    return frame.map_points(lambda xy: np.stack([s * xy[:, 0] + tx, s * xy[:, 1] + ty], 1)), (s, tx, ty)


def render_label(frame: PoseFrame, frame_hw, out_hw=(512, 1024), canvas_hw=(1080, 1920),
                 num_face_keypoints: int = 8, map_25_to_23: bool = False,
                 with_box: bool = False, box_hw=None, strict_box: bool = True, box_limit_hw=None):
    """Render one frame's keypoints (source-frame pixels of a ``frame_hw`` frame) to a label image.

    Defaults are the official ``graph_train.py --output_dim 512``: 1080x1920 canvas, 512x1024
    output. Returns ``uint8 (H, W, 3) RGB``, or ``(label, face_box)`` when ``with_box``.
    """
    cf, _ = to_canvas(frame, frame_hw, canvas_hw, map_25_to_23)
    canvas = render_canvas(cf, canvas_hw, num_face_keypoints)
    label = _lanczos(canvas, out_hw)
    if not with_box:
        return label
    return label, face_box(cf, canvas_hw, out_hw, box_hw, strict=strict_box, limit_hw=box_limit_hw)


def face_center(frame: PoseFrame, strict: bool = False):
    """The official ``aveface``: nose, else mid-ears, else the right ear, else the left ear.

    With ``strict`` a V2VError is raised when none of nose/ears is detected (the official code
    silently uses the undetected left ear's (0, 0))."""
    nose, rear, lear = _HEAD[frame.format]
    b = frame.body
    if b[nose, 2] > 0:
        return float(b[nose, 0]), float(b[nose, 1])
    if b[rear, 2] > 0 and b[lear, 2] > 0:
        return 0.5 * (b[rear, 0] + b[lear, 0]), 0.5 * (b[rear, 1] + b[lear, 1])
    if b[rear, 2] > 0:
        return float(b[rear, 0]), float(b[rear, 1])
    if strict and not b[lear, 2] > 0:
        raise V2VError(f"{frame.source or 'pose frame'}: no face box: nose and both ears are undetected "
                       f"(confidence 0); a face box needs one of them")
    return float(b[lear, 0]), float(b[lear, 1])


def make_box(miny, maxy, minx, maxx, box_hw=(128, 128), limit_hw=(512, 1024)):
    """The official ``makebox128`` generalised: a ``box_hw`` box re-centred on the given bounds and
    pushed inside ``[0, limit)`` (only along an axis whose size differs from the box size)."""

    def fit(lo, hi, dim, limit):  # one axis: re-centre to ``dim``, then push inside [0, limit)
        if hi - lo != dim:
            hi = hi + (dim - (hi - lo)) // 2
            lo = hi - dim
            if hi > limit:
                hi, lo = limit, limit - dim
            if lo < 0:
                lo, hi = 0, dim
        return int(lo), int(hi)

    miny, maxy = fit(miny, maxy, box_hw[0], limit_hw[0])
    minx, maxx = fit(minx, maxx, box_hw[1], limit_hw[1])
    return miny, maxy, minx, maxx


#: The official ``graph_train.py --facetexts`` box: ``makebox128`` always makes a 128x128 box and
#: clamps it to 512 rows x 1024 columns, whatever ``--output_dim`` is (only the scale follows it).
OFFICIAL_BOX_HW = (128, 128)
OFFICIAL_BOX_LIMIT_HW = (512, 1024)


def official_face_box(frame_in_canvas: PoseFrame, output_dim: int = 512, boxbuffer: float = 70.0,
                      strict: bool = False):
    """The face box the official ``graph_train.py --facetexts --output_dim S`` writes.

    ``aveface`` of the canvas-space (1080x1920) body, +-``boxbuffer`` canvas pixels, scaled by
    ``S/1080`` and ``2S/1920`` with ``int()``, then ``makebox128`` (a 128x128 box pushed inside 512
    x 1024, the constants of the official code at every ``S``). Returns ``(miny, maxy, minx, maxx)``.
    """
    return face_box(frame_in_canvas, (1080, 1920), (int(output_dim), 2 * int(output_dim)), OFFICIAL_BOX_HW,
                    float(boxbuffer), strict=strict, limit_hw=OFFICIAL_BOX_LIMIT_HW)


def face_box(frame_in_canvas: PoseFrame, canvas_hw=(1080, 1920), out_hw=(512, 1024), box_hw=None,
             buffer: float | None = None, strict: bool = True, limit_hw=None):
    """Face box ``(miny, maxy, minx, maxx)`` in ``out_hw`` label pixels for keypoints in canvas
    pixels. Defaults are the official ones (70 px buffer, 128x128 box at 512x1024); for other sizes
    the box and buffer scale with the output/canvas height (box rounded to a multiple of 8), and the
    box is kept inside ``limit_hw`` (default ``out_hw``). For the official files at any output size
    use :func:`official_face_box`."""
    ch, cw = canvas_hw
    oh, ow = out_hw
    if buffer is None:
        buffer = 70.0 * ch / 1080.0
    if box_hw is None:
        side = 128 if oh == 512 else max(8, round(128 * oh / 512 / 8.0) * 8)
        box_hw = (side, side)
    ax, ay = face_center(frame_in_canvas, strict=strict)
    scalex = float(ow) / float(cw)
    scaley = float(oh) / float(ch)
    minx = int(max(ax - buffer, 0) * scalex)
    miny = int(max(ay - buffer, 0) * scaley)
    maxx = int(min(ax + buffer, cw) * scalex)
    maxy = int(min(ay + buffer, ch) * scaley)
    return make_box(miny, maxy, minx, maxx, box_hw, tuple(limit_hw) if limit_hw else (oh, ow))
