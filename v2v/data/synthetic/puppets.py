"""puppets: articulated 2-D dancing figures with exact keypoints, part maps and flow.

Each figure is a kinematic tree of rigid parts (facing the camera, so the person's *right* side
is on the image *left*, as OpenPose reports it). Part ids of the part-segmentation map::

    0 background  1 head (with neck)  2 torso
    3 right upper arm  4 right forearm (+hand)  5 left upper arm  6 left forearm (+hand)
    7 right thigh  8 right shin (+foot)  9 left thigh  10 left shin (+foot)

Keypoints follow OpenPose BODY_25 order (:data:`BODY25`); every keypoint is rigidly attached
to one part, so it always lies on the figure. Joint angles are sums of sinusoids (dance-like),
the root sways and bounces. Each part has its own texture canvas in its local frame (clothes:
striped shirt on torso and upper arms, trousers on legs, skin on head, forearms and hands), so
the ground-truth flow of a pixel is the rigid motion of the part it shows. The background is a
textured wall and floor, static or slowly panning (per video).

Identity (body proportions, colours, clothing pattern) is derived from ``(seed, identity)``
only, so identity ``k`` looks the same in every split. By default video ``i`` uses identity
``i mod n_ids``; ``identity=K`` uses ``K`` for every video. Motion comes from
``(seed, split, video index)``.

Layout written by :func:`generate_puppets` under ``out``::

    {split}/vidNNNN/frames/frame_00000.png                 RGB
    {split}/vidNNNN/openpose/frame_00000_keypoints.json    OpenPose JSON, BODY_25, pixel coords
    {split}/vidNNNN/parts/frame_00000.png                  part ids (uint8, see above)
    {split}/vidNNNN/flow/frame_0000t.flo      t=0..T-2: frame_t(p) = frame_{t+1}(p + flow(p))
    {split}/vidNNNN/occ/frame_0000t.png       uint8, 255 = flow invalid
    {split}/vidNNNN/flowprev/frame_0000t.flo  t=1..T-1: frame_t(p) = frame_{t-1}(p + flow(p))
    {split}/vidNNNN/occprev/frame_0000t.png
    meta.json                                 keypoint and part names, identity params per video

Keypoint pixel coordinates use pixel centres at integers (x = column, y = row); a keypoint
inside the image has confidence 1 (also when another part hides it); one outside the image is
written as ``0, 0, 0`` (OpenPose's "missing").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from .common import occlusion_mask, smooth_noise, video_rng, write_flo, write_json, write_png

__all__ = ["BODY25", "FPS", "PARTS", "Identity", "PuppetVideo", "generate_puppets", "make_identity",
           "openpose_json", "render_puppets"]

BODY25 = ["Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
          "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
          "LHeel", "RBigToe", "RSmallToe", "RHeel"]
PARTS = ["background", "head", "torso", "right_upper_arm", "right_forearm", "left_upper_arm", "left_forearm",
         "right_thigh", "right_shin", "left_thigh", "left_shin"]
FPS = 15
# back to front
DRAW_ORDER = [7, 8, 9, 10, 2, 1, 3, 4, 5, 6]


@dataclass
class Identity:
    """Body proportions (fractions of the figure height) and appearance of one puppet."""

    index: int
    height: float  # figure height / image height
    head_r: float
    neck: float
    torso: float
    shoulder: float  # half width
    hip: float  # half width
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    foot: float
    arm_r: float
    leg_r: float
    skin: list
    hair: list
    shirt: list
    shirt2: list
    stripe_period: float  # in figure-height units
    stripe_angle: float
    pants: list
    shoes: list


# (field, low, high) in draw order: a scalar range draws one float, a 3-list range an RGB colour
_IDENTITY_RANGES = (
    ("height", 0.72, 0.86), ("head_r", 0.058, 0.072), ("neck", 0.03, 0.045), ("torso", 0.27, 0.32),
    ("shoulder", 0.085, 0.115), ("hip", 0.05, 0.07), ("upper_arm", 0.15, 0.18), ("forearm", 0.14, 0.17),
    ("thigh", 0.22, 0.25), ("shin", 0.21, 0.24), ("foot", 0.06, 0.08), ("arm_r", 0.026, 0.036),
    ("leg_r", 0.034, 0.046),
    ("skin", [140, 90, 60], [245, 210, 180]), ("hair", [10, 10, 10], [120, 90, 60]),
    ("shirt", [20, 20, 20], [235, 235, 235]), ("shirt2", [20, 20, 20], [235, 235, 235]),
    ("stripe_period", 0.05, 0.1), ("stripe_angle", -0.8, 0.8),
    ("pants", [20, 20, 30], [150, 130, 160]), ("shoes", [10, 10, 10], [90, 70, 60]),
)


def make_identity(seed: int, index: int) -> Identity:
    """Identity ``index`` for ``seed`` (independent of split and video)."""
    r = video_rng(seed, "identity", index, "puppets")
    fields = {}
    for name, lo, hi in _IDENTITY_RANGES:
        if isinstance(lo, list):
            fields[name] = [int(v) for v in r.uniform(lo, hi, 3)]
        else:
            fields[name] = float(r.uniform(lo, hi))
    return Identity(index=int(index), **fields)


@dataclass
class PuppetVideo:
    """One rendered puppet video (numpy).

    ``rgb`` T,H,W,3 uint8; ``parts`` T,H,W uint8; ``keypoints`` T,25,3 float32 (x, y pixels,
    confidence 1 visible / 0 outside the image); ``flow``/``occ`` for t=0..T-2 towards t+1,
    ``flowprev``/``occprev`` for t=1..T-1 towards t-1 (float32 ``H,W,2`` pixels; bool).
    """

    rgb: np.ndarray
    parts: np.ndarray
    keypoints: np.ndarray
    flow: np.ndarray
    occ: np.ndarray
    flowprev: np.ndarray
    occprev: np.ndarray
    info: dict


# ------------------------------------------------------------------------- part canvases
class _Part:
    """A rigid part: texture + mask canvases in local coordinates (``origin`` = canvas pixel of
    the local (0, 0)) and its keypoints in local coordinates."""

    def __init__(self, pid, rgb, mask, origin, kps):
        self.pid, self.rgb, self.mask, self.origin, self.kps = pid, rgb, mask, origin, kps


def _canvas(x0, y0, x1, y1):
    """Canvas covering local box [x0,x1]x[y0,y1] with a 3 px margin -> (h, w, origin)."""
    ox, oy = int(np.ceil(-x0)) + 3, int(np.ceil(-y0)) + 3
    w, h = int(np.ceil(x1)) + ox + 4, int(np.ceil(y1)) + oy + 4
    return h, w, np.array([ox, oy], np.float32)


def _stripes(h, w, origin, period, angle, c1, c2, rng, scale):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xs - origin[0]) * np.cos(angle) + (ys - origin[1]) * np.sin(angle)
    s = 0.5 + 0.5 * np.cos(2 * np.pi * u / max(period, 3.0))
    s = np.clip((s - 0.5) * 2.5 + 0.5, 0, 1)[:, :, None]  # steeper but still smooth
    c1 = np.asarray(c1, np.float32) / 255
    c2 = np.asarray(c2, np.float32) / 255
    base = c1 * s + c2 * (1 - s)
    n = smooth_noise(rng, h, w, max(3.0, scale))[:, :, None]
    return np.clip(base * (1 + 0.05 * n), 0, 1).astype(np.float32)


def _plain(h, w, color, rng, scale, amp=0.05):
    n = smooth_noise(rng, h, w, max(3.0, scale))[:, :, None]
    c = np.asarray(color, np.float32) / 255
    return np.clip(c * (1 + amp * n) + np.zeros((h, w, 3), np.float32), 0, 1).astype(np.float32)


def _pt(origin, x, y):
    return (int(np.rint(origin[0] + x)), int(np.rint(origin[1] + y)))


def _disk(img, origin, x, y, r, value=1):
    """Filled disk with sub-pixel centre and radius (cv2 fixed point, 4 fractional bits)."""
    c = (int(np.rint((origin[0] + x) * 16)), int(np.rint((origin[1] + y) * 16)))
    cv2.circle(img, c, int(np.rint(r * 16)), value, -1, lineType=cv2.LINE_8, shift=4)


def _build_parts(ident: Identity, fig_h: float, rng) -> dict[int, _Part]:
    """Part canvases for a figure ``fig_h`` pixels tall. Local frames: y down the limb."""
    s = fig_h
    hr, nk, tl = ident.head_r * s, ident.neck * s, ident.torso * s
    sw, hw = ident.shoulder * s, ident.hip * s
    ua, fa, th, sh, ft = ident.upper_arm * s, ident.forearm * s, ident.thigh * s, ident.shin * s, ident.foot * s
    ar, lr = max(ident.arm_r * s, 1.8), max(ident.leg_r * s, 2.0)
    hr = max(hr, 3.0)
    sc = s / 12.0
    period = ident.stripe_period * s
    parts = {}

    # head (origin: neck joint); nose/eyes/ears around the head centre
    cy = -(nk + hr)
    h, w, o = _canvas(-hr, cy - hr, hr, 0)
    mask = np.zeros((h, w), np.uint8)
    _disk(mask, o, 0, cy, hr)
    nw = max(1, int(np.rint(0.35 * hr)))
    cv2.rectangle(mask, _pt(o, -nw, cy), _pt(o, nw, 0), 1, -1)
    rgb = _plain(h, w, ident.skin, rng, sc)
    ys = np.mgrid[0:h, 0:w][0].astype(np.float32)
    hair = ((ys - o[1]) < cy - 0.35 * hr).astype(np.float32)
    hair = cv2.GaussianBlur(hair, (0, 0), 0.8)[:, :, None]
    rgb = rgb * (1 - hair) + hair * np.asarray(ident.hair, np.float32) / 255
    eyes = np.zeros((h, w), np.float32)
    for ex in (-0.38 * hr, 0.38 * hr):
        cv2.circle(eyes, _pt(o, ex, cy - 0.12 * hr), max(1, int(np.rint(0.14 * hr))), 1.0, -1)
    eyes = cv2.GaussianBlur(eyes, (0, 0), 0.7)[:, :, None]
    rgb = rgb * (1 - 0.7 * eyes)
    kps = {0: (0, cy + 0.2 * hr), 15: (-0.38 * hr, cy - 0.12 * hr), 16: (0.38 * hr, cy - 0.12 * hr),
           17: (-0.65 * hr, cy), 18: (0.65 * hr, cy)}
    parts[1] = _Part(1, rgb.astype(np.float32), mask.astype(bool), o, kps)

    # torso (origin: MidHip)
    h, w, o = _canvas(-sw - ar, -tl - ar, sw + ar, lr)
    mask = np.zeros((h, w), np.uint8)
    poly = np.array([_pt(o, -sw, -tl), _pt(o, sw, -tl), _pt(o, hw + lr, lr * 0.5), _pt(o, -hw - lr, lr * 0.5)],
                    np.int32)
    cv2.fillPoly(mask, [poly], 1)
    for x in (-sw, sw):
        _disk(mask, o, x, -tl + ar * 0.2, ar)
    rgb = _stripes(h, w, o, period, ident.stripe_angle, ident.shirt, ident.shirt2, rng, sc)
    rows = np.arange(h, dtype=np.float32)[:, None] - o[1]
    belt = np.broadcast_to(rows > -0.12 * tl, (h, w)).astype(np.float32)
    belt = cv2.GaussianBlur(belt, (0, 0), 0.8)[:, :, None]
    rgb = rgb * (1 - belt) + belt * np.asarray(ident.pants, np.float32) / 255
    kps = {8: (0, 0), 1: (0, -tl), 2: (-sw, -tl + ar * 0.2), 5: (sw, -tl + ar * 0.2), 9: (-hw, 0), 12: (hw, 0)}
    parts[2] = _Part(2, rgb.astype(np.float32), mask.astype(bool), o, kps)

    # limbs: capsule from (0,0) to (0,L); forearm adds a hand, shin adds a foot
    def limb(pid, length, radius, tex, end_kp, extra=None):
        x_ext = radius + (ft if extra == "foot" else 0)
        y_end = length + (radius * 1.6 if extra == "hand" else 0) + (radius if extra == "foot" else 0)
        h, w, o = _canvas(-x_ext, -radius, x_ext, y_end + radius)
        mask = np.zeros((h, w), np.uint8)
        cv2.line(mask, _pt(o, 0, 0), _pt(o, 0, length), 1, int(np.rint(2 * radius)))
        _disk(mask, o, 0, 0, radius)
        _disk(mask, o, 0, length, radius)
        rgb = tex(h, w, o)
        kps = {end_kp: (0, length)}
        return h, w, o, mask, rgb, kps

    skin = lambda h, w, o: _plain(h, w, ident.skin, rng, sc)
    shirt = lambda h, w, o: _stripes(h, w, o, period, ident.stripe_angle + 1.2, ident.shirt, ident.shirt2, rng, sc)
    pants = lambda h, w, o: _plain(h, w, ident.pants, rng, sc, amp=0.08)

    for pid, kp_end, tex in ((3, 3, shirt), (5, 6, shirt)):
        h, w, o, mask, rgb, kps = limb(pid, ua, ar, tex, kp_end)
        parts[pid] = _Part(pid, rgb, mask.astype(bool), o, kps)
    for pid, kp_end in ((4, 4), (6, 7)):
        h, w, o, mask, rgb, kps = limb(pid, fa, ar * 0.9, skin, kp_end, "hand")
        _disk(mask, o, 0, fa + ar * 0.5, ar * 1.3)
        parts[pid] = _Part(pid, rgb, mask.astype(bool), o, kps)
    for pid, kp_end in ((7, 10), (9, 13)):
        h, w, o, mask, rgb, kps = limb(pid, th, lr, pants, kp_end)
        parts[pid] = _Part(pid, rgb, mask.astype(bool), o, kps)
    for pid, kp_end, side, toes in ((8, 11, -1.0, (22, 23, 24)), (10, 14, 1.0, (19, 20, 21))):
        h, w, o, mask, rgb, kps = limb(pid, sh, lr * 0.9, pants, kp_end, "foot")
        fy = sh + lr * 0.6
        heel, big, small = (-side * lr * 0.3, fy), (side * ft * 0.55, fy + lr * 0.2), (side * ft * 0.9, fy + lr * 0.1)
        shoe = np.zeros((h, w), np.uint8)
        cv2.line(shoe, _pt(o, *heel), _pt(o, side * ft * 0.9, fy + lr * 0.1), 1, int(np.rint(1.6 * lr)))
        _disk(shoe, o, *heel, 0.8 * lr)
        _disk(shoe, o, *small, 0.8 * lr)
        mask |= shoe
        sf = cv2.GaussianBlur(shoe.astype(np.float32), (0, 0), 0.7)[:, :, None]
        rgb = rgb * (1 - sf) + sf * np.asarray(ident.shoes, np.float32) / 255
        kps[toes[0]], kps[toes[1]], kps[toes[2]] = big, small, heel
        parts[pid] = _Part(pid, rgb.astype(np.float32), mask.astype(bool), o, kps)
    return parts


# ------------------------------------------------------------------------------ motion
def _rot(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s], [s, c]], np.float64)


def _motion(rng, T):
    """Per-frame joint angles (radians) and root motion for one video."""
    t = np.arange(T, dtype=np.float64)
    f = rng.uniform(1 / 20, 1 / 9)  # main beat, cycles per frame

    def wave(base, amp, mult=1.0):
        ph = rng.uniform(0, 2 * np.pi)
        return base + amp * np.sin(2 * np.pi * f * mult * t + ph)

    m = {
        "lean": wave(0.0, rng.uniform(0.03, 0.15)),
        "head": wave(0.0, rng.uniform(0.05, 0.2), 2.0),
        # right arm (image left) rotates with positive angles to the outside
        "r_ua": wave(rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.0)),
        "r_fa": wave(rng.uniform(0.2, 1.0), rng.uniform(0.2, 0.8), 2.0),
        "l_ua": -wave(rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.0)),
        "l_fa": -wave(rng.uniform(0.2, 1.0), rng.uniform(0.2, 0.8), 2.0),
        "r_th": wave(rng.uniform(0.05, 0.25), rng.uniform(0.05, 0.3)),
        "r_sh": wave(-0.15, rng.uniform(0.05, 0.3), 2.0),
        "l_th": -wave(rng.uniform(0.05, 0.25), rng.uniform(0.05, 0.3)),
        "l_sh": -wave(-0.15, rng.uniform(0.05, 0.3), 2.0),
    }
    bounce = rng.uniform(0.0, 0.03)
    m["sway"] = wave(0.0, rng.uniform(0.0, 0.08))
    m["bounce"] = bounce * np.abs(np.sin(2 * np.pi * f * t + rng.uniform(0, np.pi)))
    m["drift"] = rng.uniform(-0.006, 0.006) * (t - (T - 1) / 2)
    return m


def _poses(ident: Identity, m: dict, t: int, H: int, W: int, fig_h: float, parts):
    """Rigid transforms (rotation angle, origin in pixels) of every part at frame ``t``."""
    s = fig_h
    legs = ident.thigh + ident.shin + ident.leg_r * 1.6
    hip = np.array([W / 2 + (m["sway"][t] + m["drift"][t]) * W,
                    H * 0.5 + fig_h * 0.5 - legs * s - m["bounce"][t] * H], np.float64)
    lean = m["lean"][t]
    R = _rot(lean)
    tor = parts[2]
    poses = {2: (lean, hip)}
    neck = hip + R @ np.asarray(tor.kps[1])
    poses[1] = (lean + m["head"][t], neck)
    for pid_u, pid_f, kp_s, kp_e, a_u, a_f in ((3, 4, 2, 3, "r_ua", "r_fa"), (5, 6, 5, 6, "l_ua", "l_fa")):
        sh = hip + R @ np.asarray(tor.kps[kp_s])
        au = lean + m[a_u][t]
        poses[pid_u] = (au, sh)
        el = sh + _rot(au) @ np.asarray(parts[pid_u].kps[kp_e])
        poses[pid_f] = (au + m[a_f][t], el)
    for pid_u, pid_f, kp_s, kp_e, a_u, a_f in ((7, 8, 9, 10, "r_th", "r_sh"), (9, 10, 12, 13, "l_th", "l_sh")):
        hp = hip + R @ np.asarray(tor.kps[kp_s])
        au = m[a_u][t]
        poses[pid_u] = (au, hp)
        kn = hp + _rot(au) @ np.asarray(parts[pid_u].kps[kp_e])
        poses[pid_f] = (au + m[a_f][t], kn)
    return poses


def _background(rng, H, W, pan):
    wc = W + int(np.ceil(abs(pan))) + 8
    y_floor = int(H * rng.uniform(0.6, 0.75))
    wall = np.asarray(rng.uniform(90, 230, 3), np.float32) / 255
    floor = np.asarray(rng.uniform(50, 180, 3), np.float32) / 255
    rgb = np.zeros((H, wc, 3), np.float32)
    rgb[:y_floor] = wall
    rgb[y_floor:] = floor
    n = smooth_noise(rng, H, wc, max(4.0, H / 8), channels=3)
    rgb = rgb * (1 + 0.08 * n)
    period = max(6, W // int(rng.integers(3, 7)))
    panel = 0.5 + 0.5 * np.cos(2 * np.pi * np.arange(wc, dtype=np.float32) / period)
    rgb[:y_floor] *= (1 - 0.06 * panel)[None, :, None]
    rgb = cv2.GaussianBlur(np.clip(rgb, 0, 1).astype(np.float32), (0, 0), 0.7)
    return rgb


# ------------------------------------------------------------------------------ render
def render_puppets(ident: Identity, rng: np.random.Generator, frames: int, height: int, width: int) -> PuppetVideo:
    """Render one puppet video of identity ``ident`` with motion drawn from ``rng``."""
    T, H, W = int(frames), int(height), int(width)
    fig_h = ident.height * H
    parts = _build_parts(ident, fig_h, rng)
    m = _motion(rng, T)
    pan_speed = float(rng.uniform(-0.3, 0.3) * W / 64) if rng.random() < 0.5 else 0.0
    cams = pan_speed * np.arange(T)
    cams -= cams.min()
    bg = _background(rng, H, W, float(cams.max()))
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)

    rgb = np.zeros((T, H, W, 3), np.uint8)
    part_maps = np.zeros((T, H, W), np.uint8)
    kps = np.zeros((T, 25, 3), np.float32)
    all_poses = []
    for t in range(T):
        img = cv2.remap(bg, xs + np.float32(cams[t] + 2), ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        pmap = np.zeros((H, W), np.uint8)
        poses = _poses(ident, m, t, H, W, fig_h, parts)
        all_poses.append(poses)
        for pid in DRAW_ORDER:
            part = parts[pid]
            ang, org = poses[pid]
            R = _rot(ang)
            ph, pw = part.mask.shape
            corners = np.array([[0, 0], [pw, 0], [0, ph], [pw, ph]], np.float64) - part.origin
            scr = corners @ R.T + org
            xa, xb = max(0, int(np.floor(scr[:, 0].min())) - 1), min(W, int(np.ceil(scr[:, 0].max())) + 2)
            ya, yb = max(0, int(np.floor(scr[:, 1].min())) - 1), min(H, int(np.ceil(scr[:, 1].max())) + 2)
            for k, loc in part.kps.items():
                kps[t, k, :2] = R @ np.asarray(loc, np.float64) + org
            if xb <= xa or yb <= ya:  # part entirely outside the image
                continue
            dx, dy = xs[ya:yb, xa:xb] - org[0], ys[ya:yb, xa:xb] - org[1]
            c, s_ = np.cos(ang), np.sin(ang)
            lx = (c * dx + s_ * dy + part.origin[0]).astype(np.float32)  # R^T (p - org)
            ly = (-s_ * dx + c * dy + part.origin[1]).astype(np.float32)
            col = cv2.remap(part.rgb, lx, ly, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            msk = cv2.remap(part.mask.astype(np.uint8), lx, ly, cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
            img[ya:yb, xa:xb][msk] = col[msk]
            pmap[ya:yb, xa:xb][msk] = pid
        rgb[t] = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
        part_maps[t] = pmap
    inside = (kps[..., 0] >= 0) & (kps[..., 0] <= W - 1) & (kps[..., 1] >= 0) & (kps[..., 1] <= H - 1)
    kps[..., 2] = inside
    kps[~inside] = 0

    def flow_between(t, u):
        flow = np.zeros((H, W, 2), np.float32)
        bgm = part_maps[t] == 0
        flow[bgm, 0] = cams[t] - cams[u]
        for pid in range(1, 11):
            msk = part_maps[t] == pid
            if not msk.any():
                continue
            (a_t, o_t), (a_u, o_u) = all_poses[t][pid], all_poses[u][pid]
            # q = R_u R_t^T (p - o_t) + o_u
            M = _rot(a_u) @ _rot(a_t).T
            p = np.stack([xs[msk], ys[msk]], 1).astype(np.float64)
            q = (p - o_t) @ M.T + o_u
            flow[msk] = (q - p).astype(np.float32)
        return flow, occlusion_mask(flow, part_maps[t], part_maps[u])

    n = max(T - 1, 0)
    flow = np.zeros((n, H, W, 2), np.float32)
    occ = np.zeros((n, H, W), bool)
    flowprev, occprev = np.zeros_like(flow), np.zeros_like(occ)
    for t in range(n):
        flow[t], occ[t] = flow_between(t, t + 1)
        flowprev[t], occprev[t] = flow_between(t + 1, t)
    info = {"identity": ident.index, "pan_speed": round(pan_speed, 4)}
    return PuppetVideo(rgb, part_maps, kps, flow, occ, flowprev, occprev, info)


def openpose_json(kp: np.ndarray) -> dict:
    """OpenPose 1.3 JSON dict for one person's BODY_25 keypoints ``25,3`` (x, y, c)."""
    flat = [round(float(v), 3) for v in np.asarray(kp, np.float64).reshape(-1)]
    return {"version": 1.3, "people": [{
        "person_id": [-1], "pose_keypoints_2d": flat, "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
        "hand_right_keypoints_2d": [], "pose_keypoints_3d": [], "face_keypoints_3d": [],
        "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}]}


def generate_puppets(out, videos: int = 4, frames: int = 12, size=(64, 64), seed: int = 0, split: str = "train",
                     identity: int | None = None, n_ids: int = 4, progress: bool = True) -> Path:
    """Write ``videos`` puppet videos under ``out`` (layout in the module docstring).

    Video ``i`` uses identity ``identity`` if given, else ``i % n_ids``. Same arguments give
    byte-identical files.
    """
    from tqdm import tqdm

    from v2v.errors import V2VError

    if frames < 2:
        raise V2VError(f"puppets: --frames must be at least 2 (got {frames})")
    out = Path(out)
    H, W = int(size[0]), int(size[1])
    bar = tqdm(total=videos * frames, desc=f"puppets {split}", unit="frame", disable=not progress)
    vids_meta = []
    for i in range(videos):
        k = int(identity) if identity is not None else i % int(n_ids)
        ident = make_identity(seed, k)
        vid = render_puppets(ident, video_rng(seed, split, i, "puppets"), frames, H, W)
        d = out / split / f"vid{i:04d}"
        for t in range(frames):
            name = f"frame_{t:05d}"
            write_png(d / "frames" / f"{name}.png", vid.rgb[t])
            write_png(d / "parts" / f"{name}.png", vid.parts[t])
            write_json(d / "openpose" / f"{name}_keypoints.json", openpose_json(vid.keypoints[t]), indent=None)
            if t < frames - 1:
                write_flo(d / "flow" / f"{name}.flo", vid.flow[t])
                write_png(d / "occ" / f"{name}.png", vid.occ[t].astype(np.uint8) * 255)
            if t > 0:
                write_flo(d / "flowprev" / f"{name}.flo", vid.flowprev[t - 1])
                write_png(d / "occprev" / f"{name}.png", vid.occprev[t - 1].astype(np.uint8) * 255)
            bar.update(1)
        ip = asdict(ident)
        ip = {key: (round(v, 5) if isinstance(v, float) else v) for key, v in ip.items()}
        vids_meta.append({"name": d.name, "identity": k, "identity_params": ip, **vid.info})
    bar.close()
    meta_path = out / "meta.json"
    import json

    prev = {}
    if meta_path.is_file():
        try:
            prev = json.loads(meta_path.read_text())
        except ValueError:
            prev = {}
    splits = prev.get("splits", {}) if prev.get("dataset") == "puppets" else {}
    splits[split] = {"seed": int(seed), "size": [H, W], "counts": {"videos": int(videos), "frames": int(frames)},
                     "videos": vids_meta}
    write_json(meta_path, {
        "dataset": "puppets",
        "keypoints": BODY25,
        "keypoint_format": "OpenPose BODY_25, pixel coordinates (pixel centres at integers), c=1 inside the image "
                           "(even if self-occluded), 0,0,0 = outside the image",
        "parts": PARTS,
        "fps": FPS,
        "identities": "identity = video index mod n_ids unless --identity is given; derived from (seed, identity)",
        "flow": "backward, pixels: frame_t(p) = frame_{t+1}(p + flow_t(p)); flowprev_t: frame_t(p) = "
                "frame_{t-1}(p + flowprev_t(p))",
        "splits": dict(sorted(splits.items())),
    })
    return out
