"""Global pose normalisation (Everybody Dance Now ``graph_posenorm.py``) and temporal smoothing.

The source dancer's keypoints are mapped into the target subject's frame with a per-frame scale
and vertical offset interpolated between the "close" (largest ankle y, near the camera) and "far"
(the horizon) positions of both subjects:

1. :func:`keypoint_stats` draws frames at random (with replacement) and collects, for every frame
   with exactly one BODY_23 person whose head, right ankle and left ear are detected (the official
   validity test), the body height and the ankle y values.
2. :func:`compute_norm_params` finds each subject's horizon from the median of the max-ankle y
   values and derives ``scale_close``/``scale_far`` from the heights found near the two extremes.
3. :func:`normalize_frames` applies ``x*s + tx, y*s + ty`` to every keypoint of every part.
4. :func:`median_smooth` is the official ``getmedians_adapt`` over a window of frames.

Everything is exposed (the statistics dataclasses are plain data) so that a user can inspect or
save them (``v2v pose normalize`` writes them as JSON). Keypoints are float64 pixel arrays as in
:mod:`v2v.data.pose`. Statistics need **BODY_23** (the official ``poselen = 69``); BODY_25 input is
mapped to BODY_23 first by the callers in v2v.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from v2v.data.pose import PoseFrame
from v2v.errors import V2VError

__all__ = [
    "FrameNorm",
    "KeypointStats",
    "NormParams",
    "compute_norm_params",
    "find_horizon",
    "keypoint_stats",
    "median_smooth",
    "normalize_frames",
    "pose_stats",
    "smooth_sequence",
]

# (nose, right ear, left ear, right ankle, left ankle) per format
_STATS_IDX = {"COCO_18": (0, 16, 17, 10, 13), "BODY_23": (18, 20, 22, 10, 15), "BODY_25": (0, 17, 18, 11, 14)}


def pose_stats(body: np.ndarray, fmt: str = "BODY_23"):
    """Official ``get_pose_stats``: ``(height, min_tip_toe, max_tip_toe)`` or None when invalid.

    Valid iff the head (nose, else both ears) AND the right ankle AND the **left ear** are detected
    (the official code tests the left ear where the left ankle was meant; kept for parity).
    """
    nose, rear, lear, rfoot, lfoot = _STATS_IDX[fmt]
    b = body
    con0 = b[nose, 2] > 0
    headx, heady = b[nose, 0], b[nose, 1]
    if not con0:
        con0 = b[rear, 2] > 0 and b[lear, 2] > 0
        headx = 0.5 * (b[rear, 0] + b[lear, 0])
        heady = 0.5 * (b[rear, 1] + b[lear, 1])
    if con0 and b[rfoot, 2] > 0 and b[lear, 2] > 0:
        fx = (b[rfoot, 0] + b[lfoot, 0]) * 0.5
        fy = (b[rfoot, 1] + b[lfoot, 1]) * 0.5
        height = math.sqrt((headx - fx) ** 2 + (heady - fy) ** 2)
        return height, min(b[rfoot, 1], b[lfoot, 1]), max(b[rfoot, 1], b[lfoot, 1])
    return None


@dataclass
class KeypointStats:
    """Official ``get_keypoints_stats`` results (heights/toes in canvas pixels)."""

    maxheight: float
    mintoe: float
    maxtoe: float
    avemintoe: float
    minmaxtoe: float
    median: float
    tiptoes: list = field(default_factory=list)  # max ankle y of each counted draw, in order
    tiptoe_to_height: dict = field(default_factory=dict)  # max ankle y -> [heights]
    draws: list = field(default_factory=list)  # frame indices drawn, in order
    count: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tiptoe_to_height"] = [[k, v] for k, v in self.tiptoe_to_height.items()]
        return d

    @classmethod
    def from_dict(cls, d: dict, name: str = "target_stats") -> KeypointStats:
        """Validate and load :meth:`to_dict` output; a missing key or a wrong type is a V2VError."""
        from v2v.errors import V2VError

        if not isinstance(d, dict):
            raise V2VError(f"{name}: expected an object of keypoint statistics, got {type(d).__name__}")
        scalars = ("maxheight", "mintoe", "maxtoe", "avemintoe", "minmaxtoe", "median")
        missing = [k for k in scalars if k not in d]
        if missing:
            raise V2VError(f"{name}: incomplete keypoint statistics (missing {', '.join(missing)})")
        unknown = sorted(set(d) - set(scalars) - {"tiptoes", "tiptoe_to_height", "draws", "count"})
        if unknown:
            raise V2VError(f"{name}: unknown keypoint statistics key(s) {', '.join(unknown)}")

        def num(key, v):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                raise V2VError(f"{name}.{key}: expected a finite number, got {str(v)[:40]!r}")
            return float(v)

        def nums(key, v):
            if not isinstance(v, list):
                raise V2VError(f"{name}.{key}: expected a list of numbers")
            return [num(key, x) for x in v]

        out = {k: num(k, d[k]) for k in scalars}
        out["tiptoes"] = nums("tiptoes", d.get("tiptoes", []))
        pairs = d.get("tiptoe_to_height", [])
        if isinstance(pairs, dict):
            pairs = list(pairs.items())
        if not isinstance(pairs, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
            raise V2VError(f"{name}.tiptoe_to_height: expected a list of [tiptoe, [heights]] pairs")
        try:
            out["tiptoe_to_height"] = {num("tiptoe_to_height", float(k) if isinstance(k, str) else k):
                                       nums("tiptoe_to_height", v) for k, v in pairs}
        except ValueError:
            raise V2VError(f"{name}.tiptoe_to_height: a key is not a number") from None
        draws = d.get("draws", [])
        if not isinstance(draws, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in draws):
            raise V2VError(f"{name}.draws: expected a list of frame indices")
        count = d.get("count", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise V2VError(f"{name}.count: expected a non-negative integer")
        return cls(draws=list(draws), count=count, **out)


def keypoint_stats(frames: Sequence[PoseFrame | None], spread=None, stophere: int = 20000, draws=None,
                   rng: np.random.Generator | None = None, frame_hw=(1080, 1920), name: str = "poses",
                   one_person_only: bool = True, fmt: str = "BODY_23") -> KeypointStats:
    """Statistics of a subject (official ``get_keypoints_stats``).

    ``frames[n]`` is frame n (None = no person). ``spread = (lo, hi)``: frames are drawn uniformly in
    ``[lo, hi)`` with replacement until ``min(stophere, hi - lo)`` valid frames are counted. ``draws``
    replays a recorded draw sequence (the official code is unseeded); else ``rng`` (default seeded 0)
    draws. A frame that does not hold exactly one ``fmt`` person (official: BODY_23) is skipped
    without counting.
    Raises V2VError naming ``name`` when no frame is valid (e.g. no visible ankles).
    """
    if spread is None:
        spread = (0, len(frames))
    lo, hi = int(spread[0]), int(spread[1])
    if hi <= lo:
        raise V2VError(f"{name}: empty frame range {spread}")
    usable = []
    for n in range(lo, hi):
        f = frames[n] if 0 <= n < len(frames) else None
        ok = f is not None and (f.num_people == 1 or not one_person_only) and f.format == fmt
        usable.append(ok and pose_stats(f.body, fmt) is not None)
    if not any(usable):
        raise V2VError(
            f"{name}: no usable pose in frames {lo}..{hi - 1}: statistics need one {fmt} person with a "
            f"visible head (nose or both ears), right ankle and left ear (the official test); none of the "
            f"{hi - lo} frames has them (no visible ankles?)")
    st = KeypointStats(maxheight=0.0, mintoe=float(frame_hw[0]), maxtoe=0.0, avemintoe=0.0,
                       minmaxtoe=float(frame_hw[0]), median=0.0)
    if rng is None and draws is None:
        rng = np.random.default_rng(0)
    it = iter(draws) if draws is not None else None
    guard = 0
    while True:
        if it is not None:
            try:
                n = int(next(it))
            except StopIteration:
                raise V2VError(f"{name}: the recorded draws ran out after {len(st.draws)} draws "
                               f"({st.count} valid frames counted)") from None
        else:
            n = int(rng.integers(lo, hi))
            guard += 1
            if guard > 1000 * (hi - lo) + 100000:
                raise V2VError(f"{name}: too few valid frames to collect statistics")
        st.draws.append(n)
        f = frames[n] if 0 <= n < len(frames) else None
        if f is None or f.format != fmt or (one_person_only and f.num_people != 1):
            continue  # the official `continue` also skips the stop test
        chk = pose_stats(f.body, fmt)
        if chk:
            height, mn, mx = chk
            st.maxheight = max(st.maxheight, height)
            st.mintoe = min(st.mintoe, mn)
            st.maxtoe = max(st.maxtoe, mx)
            st.avemintoe += mx
            st.minmaxtoe = min(mx, st.minmaxtoe)
            st.tiptoes.append(mx)
            st.count += 1
            st.tiptoe_to_height.setdefault(mx, []).append(height)
        if st.count >= stophere or st.count >= hi - lo:
            break
    st.avemintoe = st.avemintoe / float(st.count)
    st.median = float(np.median(st.tiptoes))
    return st


def find_horizon(st: KeypointStats, median_frac: float = 0.5, name: str = "poses") -> float:
    """Official horizon: ``median - max(d)`` over ``d = median - tiptoes`` with
    ``0 < d < median_frac * (maxtoe - median)``."""
    d = st.median - np.asarray(st.tiptoes, dtype=np.float64)
    sel = d[(d > 0) & (d < median_frac * (st.maxtoe - st.median))]
    if sel.size == 0:
        raise V2VError(f"{name}: cannot find a horizon: no ankle position lies above the median by less "
                       f"than {median_frac} x (max - median); the subject barely moves toward/away from the "
                       f"camera (try a larger median_frac or more frames)")
    return float((sel[int(np.argmax(sel))] - st.median) * -1)


@dataclass
class NormParams:
    """Normalisation parameters (official ``norm_params.txt`` plus what led to them)."""

    scale_close: float
    scale_far: float
    translation: list  # [[m_maxtoe, m_horizon], [t_maxtoe, t_horizon]] after the small-range rule
    target_horizon: float  # before the small-range rule
    source_horizon: float
    small_range: bool
    heights_close_far: list  # [close_tgt, close_src, far_tgt, far_src] before the reset rule
    reset_close: list  # [tgt, src]

    def to_dict(self) -> dict:
        return asdict(self)

    def norm_params_txt(self) -> str:
        (a, b), (c, d) = self.translation
        a, b, c, d = (float(v) for v in (a, b, c, d))
        return f"{float(self.scale_close)!r} {float(self.scale_far)!r}\n{a!r} {b!r} {c!r} {d!r}"


def _max_height_near(t2h: dict, center: float, rng_: float) -> float:
    best = 0
    for key, hs in t2h.items():
        if abs(key - center) <= rng_:
            h = max(hs)
            best = max(best, h)
    return best


def compute_norm_params(target: KeypointStats, source: KeypointStats, target_median_frac: float = 0.5,
                        source_median_frac: float = 0.5, frac: float = 0.05, fallback: bool = False) -> NormParams:
    """Official scale/translation from target (``m_``) and source (``t_``) statistics.

    With ``fallback`` (not official), a subject whose horizon cannot be found (short clips, little
    motion in depth) uses its highest ankle position (or 1 px above the lowest) as the horizon, and
    missing close/far heights fall back to the subject's maximum height, instead of an error."""

    def horizon(st, f, name):
        try:
            return find_horizon(st, f, name)
        except V2VError:
            if not fallback:
                raise
            h = float(min(st.tiptoes))
            return h if st.maxtoe - h > 1e-6 else float(st.maxtoe) - 1.0

    m_h = horizon(target, target_median_frac, "target poses")
    t_h = horizon(source, source_median_frac, "source poses")
    m_maxtoe, t_maxtoe = target.maxtoe, source.maxtoe
    translation = [[m_maxtoe, m_h], [t_maxtoe, t_h]]
    small = t_maxtoe - t_h < m_maxtoe - m_h
    if small:
        mid = 0.5 * (m_maxtoe + m_h)
        half = 0.5 * (t_maxtoe - t_h)
        translation = [[mid + half, mid - half], [t_maxtoe, t_h]]
    (mm, mh), (tm, th) = translation
    r0 = (mm - mh) * frac
    r1 = (tm - th) * frac
    close0 = _max_height_near(target.tiptoe_to_height, mm, r0)
    far0 = _max_height_near(target.tiptoe_to_height, mh, r0)
    close1 = _max_height_near(source.tiptoe_to_height, tm, r1)
    far1 = _max_height_near(source.tiptoe_to_height, th, r1)
    printed = [close0, close1, far0, far1]
    max_all0 = max(target.tiptoe_to_height.values())[0]
    max_all1 = max(source.tiptoe_to_height.values())[0]
    reset = [False, False]
    if max_all0 - close0 > 0.1 * max_all0:
        close0, reset[0] = max_all0, True
    if max_all1 - close1 > 0.1 * max_all1:
        close1, reset[1] = max_all1, True
    if fallback:
        close0, far0 = close0 or target.maxheight, far0 or target.maxheight
        close1, far1 = close1 or source.maxheight, far1 or source.maxheight
    if close1 == 0 or far1 == 0:
        raise V2VError("source poses: no source height found near the "
                       + ("camera (close)" if close1 == 0 else "horizon (far)") + " position")
    return NormParams(scale_close=float(close0 / float(close1)), scale_far=float(far0 / float(far1)),
                      translation=[[float(v) for v in r] for r in translation], target_horizon=float(m_h),
                      source_horizon=float(t_h), small_range=bool(small),
                      heights_close_far=[float(v) for v in printed], reset_close=reset)


@dataclass
class FrameNorm:
    """Per-source-frame result of :func:`normalize_frames`.

    ``status``: 0 skipped (not exactly one person), 1 skipped (invalid before the first valid pose),
    2 invalid pose (last diff/scale reused), 3 valid. ``frame`` is the normalised PoseFrame (None
    when skipped)."""

    index: int
    status: int
    diff: float = float("nan")
    scale: float = float("nan")
    translateback: tuple = (float("nan"), float("nan"))
    frame: PoseFrame | None = None


def _interp(max_tip_toe: float, p: NormParams):
    (mm, mh), (tm, th) = p.translation
    pct = (max_tip_toe - th) / float(tm - th)
    m_coord = mh + pct * float(mm - mh)
    scale = p.scale_far + pct * float(p.scale_close - p.scale_far)
    return m_coord - max_tip_toe, scale


def normalize_frames(frames: Sequence[PoseFrame | None], params: NormParams, target_width: int = 1920,
                     one_person_only: bool = True, keep_skipped: bool = False, fmt: str = "BODY_23"):
    """Official ``transform_interp`` (minus rendering): yields a :class:`FrameNorm` per frame.

    Frames must be BODY_23 in canvas pixels. The anchor is ``(target_width // 2, y of the lower ankle
    of the first valid frame)``; every keypoint (including undetected ones) gets ``x*s + tx, y*s + ty``.
    With ``keep_skipped`` an invalid pose before the first valid one is still normalised with the
    first valid frame's parameters (status stays 1) so that no frame is dropped.
    """
    min_coords = None
    lastdiff, lastscale = 0.0, 0.0
    pending = []
    for n, f in enumerate(frames):
        if f is None or f.format != fmt or (one_person_only and f.num_people != 1):
            yield FrameNorm(n, 0)
            continue
        chk = pose_stats(f.body, fmt)
        if not chk and min_coords is None:
            if keep_skipped:
                pending.append((n, f))
            else:
                yield FrameNorm(n, 1)
            continue
        if not chk:
            status, diff, scale = 2, lastdiff, lastscale
        else:
            status = 3
            diff, scale = _interp(chk[2], params)
            lastdiff, lastscale = diff, scale
        if min_coords is None:
            b = f.body
            ra, la = _STATS_IDX[fmt][3:]
            idx = ra if b[ra, 1] > b[la, 1] else la
            min_coords = (target_width // 2, b[idx, 1])
        tb = (min_coords[0] - scale * min_coords[0], min_coords[1] - scale * min_coords[1] + diff)
        for (pn, pf) in pending:
            yield FrameNorm(pn, 1, diff, scale, tb, _apply(pf, tb, scale))
        pending = []
        yield FrameNorm(n, status, diff, scale, tb, _apply(f, tb, scale))
    for (pn, _pf) in pending:
        yield FrameNorm(pn, 1)


def _apply(f: PoseFrame, tb, s) -> PoseFrame:
    return f.map_points(lambda xy: np.stack([xy[:, 0] * s + tb[0], xy[:, 1] * s + tb[1]], 1))


def _median_part(arrs: list[np.ndarray], threshold: float = 0.0) -> np.ndarray:
    a = np.stack(arrs, 0)  # T,K,3
    med = np.median(a, axis=0)  # K,3
    out = med.copy()
    for k in range(a.shape[1]):
        if med[k, 2] > 0:
            conf = a[:, k, 2] > threshold
            out[k] = np.median(a[conf, k], axis=0) if conf.any() else 0.0
    return out


def median_smooth(window: Sequence[PoseFrame], threshold: float = 0.0) -> PoseFrame:
    """Official ``getmedians_adapt`` over a window of frames, per part and keypoint: the median of
    (x, y, c); when that median confidence is > 0, the median over frames with c > threshold only."""
    first = window[0]
    parts = {p: _median_part([getattr(w, p) for w in window], threshold) for p in
             ("body", "face", "hand_right", "hand_left")}
    return replace(first, others=[], num_people=1, **parts)


def smooth_sequence(frames: Sequence[PoseFrame], window: int = 7, mode: str = "centered"):
    """Temporal median smoothing of a pose sequence.

    ``mode="official"``: output k = median of frames k..k+window-1 (the first window-1 frames
    produce no output, as in ``graph_posenorm.py``). ``mode="centered"``: one output per input,
    the median of a window centred on the frame (shrunk at the ends), keeping the frame count.
    """
    frames = list(frames)
    if mode == "official":
        return [median_smooth(frames[k:k + window]) for k in range(len(frames) - window + 1)]
    if mode != "centered":
        raise V2VError(f"unknown smoothing mode '{mode}' (expected 'centered' or 'official')")
    h = window // 2
    out = []
    for k in range(len(frames)):
        a, b = max(0, k - h), min(len(frames), k + h + 1)
        out.append(median_smooth(frames[a:b]) if window > 1 else frames[k])
    return out
