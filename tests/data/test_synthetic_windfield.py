"""windfield synthetic set: exact flow, the image tells the wind, determinism, CLI."""
from __future__ import annotations

import json

import numpy as np
import torch

from v2v.data.synthetic.common import tree_digest, video_rng
from v2v.data.synthetic.windfield import generate_windfield, load_windfield_flow, render_windfield


def _warp(img_u8, flow):
    from v2v.ops.warp import warp

    img = torch.from_numpy(img_u8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return warp(img, torch.from_numpy(flow).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()


def test_flow_is_exact_and_only_the_sky_moves():
    vid = render_windfield(video_rng(3, "train", 1, "windfield"), 5, 48, 64)
    assert vid.rgb.shape == (5, 48, 64, 3) and vid.flow.shape == (4, 48, 64, 2)
    for t in range(4):
        valid = ~vid.occ[t]
        assert valid.mean() > 0.5
        mse = ((_warp(vid.rgb[t + 1], vid.flow[t]) - vid.rgb[t] / 255.0) ** 2)[valid].mean()
        assert 10 * np.log10(1 / max(mse, 1e-12)) > 35
        # frames really change (the still video is a bad prediction)
        assert np.abs(vid.rgb[t + 1].astype(float) - vid.rgb[t])[valid].mean() > 0.3
    f = vid.flow[0]
    assert set(np.unique(f[..., 1])) == {0.0}
    assert np.isclose(np.abs(f[..., 0]).max(), abs(vid.v)) and (f[..., 0] == 0).any()  # meadow static


def test_the_first_frame_shows_the_wind():
    """The grass leans downwind, more for stronger wind: sign(lean) == sign(v), |lean| grows with |v|."""
    vids = [render_windfield(video_rng(0, "train", i, "windfield"), 2, 32, 32) for i in range(12)]
    vs = np.array([v.v for v in vids])
    leans = np.array([v.info["lean"] for v in vids])
    assert (np.sign(vs) == np.sign(leans)).all() and (vs > 0).any() and (vs < 0).any()
    order = np.argsort(np.abs(vs))
    assert (np.diff(np.abs(leans)[order]) >= 0).all()


def test_deterministic_layout_and_cli(tmp_path, run_cli):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_windfield(a, videos=2, frames=3, size=(32, 32), seed=7, progress=False)
    rc, out, _ = run_cli("data", "synth", "windfield", "--out", b, "--videos", 2, "--frames", 3, "--size", "32x32",
                         "--seed", 7, "--quiet")
    assert rc == 0, out
    assert tree_digest(a) == tree_digest(b)
    generate_windfield(b, videos=1, frames=3, size=(32, 32), seed=8, split="test", progress=False)
    meta = json.loads((b / "meta.json").read_text())
    assert set(meta["splits"]) == {"train", "test"} and meta["dataset"] == "windfield"
    flow, occ = load_windfield_flow(a / "train" / "seq0001", 0, 2)
    assert flow.shape == (2, 32, 32, 2) and occ.dtype == bool
    assert abs(np.abs(flow[..., 0]).max() - abs(meta["splits"]["train"]["per_video"][1]["v"])) < 1e-6
    # the frames are read by the generic video-folder dataset
    from v2v.data.datasets import VideoFolderDataset

    ds = VideoFolderDataset(a, mode="clips", n_frames=3, size=(32, 32), split="train")
    assert len(ds) == 2 and ds[0]["video"].shape == (3, 3, 32, 32)
