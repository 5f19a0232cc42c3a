"""Datasets: vid2vid label sequences, pix2pixHD pairs, FOMM video folders (real shared data)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from v2v.data.datasets import (
    LabelSequenceDataset,
    PairedImageDataset,
    VideoFolderDataset,
    labels_to_input,
    pairing_key,
)
from v2v.data.image import read_label_map, write_label_map
from v2v.errors import V2VError

# label ids per sequence, from ../shared/data/README.md
SEQ_IDS = {
    "seq0000": {7, 8, 11, 12, 13, 17, *range(19, 27), 28, 31, 32, 33},
    "seq0001": {7, 8, 11, 12, 13, 17, *range(19, 29), 31, 33},
    "stuttgart_00": {7, 8, 11, 12, 13, 17, *range(19, 29), 32, 33},
}


@pytest.fixture(scope="module")
def cs(shared):
    return shared / "data/cityscapes_seq"


def test_pairing_key_strips_cityscapes_suffixes():
    assert pairing_key("a/stuttgart_00_000000_000003_leftImg8bit.png") == "stuttgart_00_000000_000003"
    assert pairing_key("aachen_000000_000019_gtFine_labelIds.png") == "aachen_000000_000019"
    assert pairing_key("aachen_000000_000019_gtFine_instanceIds.png") == "aachen_000000_000019"
    assert pairing_key("frame_00001.flo") == "frame_00001"


def test_vid2vid_train_sequences(cs):
    ds = LabelSequenceDataset(cs / "vid2vid", "train", n_frames=2, label_nc=35, size=(32, 64), clip_step=14)
    assert [(s["name"], len(s["labels"])) for s in ds.seqs] == [("seq0000", 30), ("seq0001", 30)]
    assert ds.use_instance  # auto: train_inst exists
    assert len(ds) == 2 * 3  # starts 0, 14, 28 per sequence
    it = ds[4]  # seq0001, start 14
    assert it["seq"] == "seq0001" and it["start"] == 14
    assert it["frame_ids"].tolist() == [14, 15]
    assert it["labels"].dtype == torch.long and it["labels"].shape == (2, 32, 64)
    assert it["instances"].shape == (2, 32, 64)
    assert it["images"].shape == (2, 3, 32, 64) and it["images"].dtype == torch.float32
    assert 0.05 < float(it["images"].mean()) < 0.95
    assert set(it["labels"].unique().tolist()) <= SEQ_IDS["seq0001"]
    # 8-bit predicted instance maps: 255 = no instance
    assert 255 in it["instances"].unique().tolist()
    # nearest resize keeps ids exactly: compare with a direct strided read of the label map
    full = read_label_map(ds.seqs[1]["labels"][14])
    assert set(it["labels"][0].unique().tolist()) <= set(np.unique(full).tolist())


def test_vid2vid_label_ids_per_sequence_full_res(cs):
    # whole sequences, first 2 frames each, native 2048x1024
    for split, name in (("train", "seq0000"), ("train", "seq0001"), ("test", "stuttgart_00")):
        ds = LabelSequenceDataset(cs / "vid2vid", split, label_nc=35, max_frames=2, load_images=False)
        si = [s["name"] for s in ds.seqs].index(name)
        lab = read_label_map(ds.seqs[si]["labels"][0])
        assert lab.shape == (1024, 2048)
        assert set(np.unique(lab).tolist()) <= SEQ_IDS[name]


def test_stuttgart_has_no_images_and_1_based_numbering(cs):
    ds = LabelSequenceDataset(cs / "vid2vid", "test", n_frames=None, label_nc=35, size=(16, 32))
    assert len(ds) == 1
    s = ds.seqs[0]
    assert s["name"] == "stuttgart_00" and len(s["labels"]) == 30 and s["images"] is None
    assert s["labels"][0].name == "stuttgart_00_000000_000001_leftImg8bit.png"
    assert s["labels"][-1].name == "stuttgart_00_000000_000030_leftImg8bit.png"
    ds2 = LabelSequenceDataset(cs / "vid2vid", "test", n_frames=2, label_nc=35, size=(16, 32), clip_step=100)
    it = ds2[0]
    assert "images" not in it and it["labels"].shape == (2, 16, 32) and it["instances"].shape == (2, 16, 32)


def _symlink_layout(src, dst, drop_image=None, seqs=("seq0000",)):
    for part in ("A", "B", "inst"):
        for seq in seqs:
            d = dst / f"train_{part}" / seq
            d.mkdir(parents=True)
            for f in sorted((src / f"train_{part}" / seq).iterdir()):
                if part == "B" and drop_image is not None and f.name == drop_image:
                    continue
                os.symlink(f, d / f.name)


def test_mismatched_counts_one_line_error(cs, tmp_path):
    _symlink_layout(cs / "vid2vid", tmp_path, drop_image="aachen_000000_000007_leftImg8bit.jpg")
    with pytest.raises(V2VError) as ei:
        LabelSequenceDataset(tmp_path, "train", n_frames=2, label_nc=35)
    msg = str(ei.value)
    assert "\n" not in msg
    assert "seq0000" in msg and "30 label maps" in msg and "29 images" in msg


def test_label_id_out_of_range_names_file_and_max(cs, tmp_path):
    ds = LabelSequenceDataset(cs / "vid2vid", "train", n_frames=1, label_nc=30, size=(8, 16), clip_step=100)
    with pytest.raises(V2VError) as ei:
        ds[0]
    msg = str(ei.value)
    assert "aachen_000000_000000_leftImg8bit.png" in msg and "label id 33" in msg and "label_nc=30" in msg
    assert "\n" not in msg


def test_missing_instance_map_and_empty_folder(tmp_path):
    lab = np.zeros((4, 6), np.int32)
    for k in range(3):
        write_label_map(tmp_path / "train_A/s0" / f"f{k}.png", lab + k)
        if k < 2:
            write_label_map(tmp_path / "train_inst/s0" / f"f{k}.png", lab)
    with pytest.raises(
        V2VError, match=r"no instance maps for label map 'f2'|3 label maps .* 2 instance maps"
    ):
        LabelSequenceDataset(tmp_path, "train", use_instance=True)
    ds = LabelSequenceDataset(tmp_path, "train", use_instance=False)
    assert "instances" not in ds[0] and ds[0]["labels"][:, 0, 0].tolist() == [0, 1, 2]
    with pytest.raises(V2VError, match=r"test_A: label folder not found"):
        LabelSequenceDataset(tmp_path, "test")
    (tmp_path / "val_A/empty").mkdir(parents=True)
    with pytest.raises(V2VError, match=r"empty: contains no label maps"):
        LabelSequenceDataset(tmp_path, "val")


def test_flow_folders_loaded_and_scaled(tmp_path):
    h, w = 6, 8
    for k in range(3):
        write_label_map(tmp_path / "train_A/s" / f"frame_{k:05d}.png", np.full((h, w), k))
    rng = np.random.default_rng(0)
    flows = rng.normal(size=(2, h, w, 2)).astype(np.float32)
    for k in range(2):
        p = tmp_path / "train_flow/s" / f"frame_{k:05d}.flo"
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            f.write(np.array([202021.25], "<f4").tobytes() + np.array([w, h], "<i4").tobytes())
            f.write(flows[k].astype("<f4").tobytes())
        write_label_map(tmp_path / "train_occ/s" / f"frame_{k:05d}.png", np.full((h, w), 255 * k))
    ds = LabelSequenceDataset(tmp_path, "train", n_frames=3)
    it = ds[0]
    assert it["flow"].shape == (2, 2, h, w)
    torch.testing.assert_close(it["flow"], torch.from_numpy(flows).permute(0, 3, 1, 2))
    assert it["occ"][:, 0, 0, 0].tolist() == [0.0, 1.0]
    it2 = LabelSequenceDataset(tmp_path, "train", n_frames=3, size=(12, 16))[0]
    # doubling the size doubles the vectors (constant-flow check on the mean)
    torch.testing.assert_close(it2["flow"].mean((2, 3)), 2 * it["flow"].mean((2, 3)), atol=0.15, rtol=0)


def test_labels_to_input_onehot_plus_edges():
    labels = torch.tensor([[[0, 0, 2], [1, 1, 2]]])  # 1,2,3
    inst = torch.tensor([[[5, 5, 7], [5, 5, 7]]])
    x = labels_to_input(labels, inst, label_nc=3, use_instance=True)
    assert x.shape == (1, 4, 2, 3)
    torch.testing.assert_close(x[0, :3].argmax(0), labels[0])
    torch.testing.assert_close(x[0, :3].sum(0), torch.ones(2, 3))
    torch.testing.assert_close(x[0, 3], torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]))
    xt = labels_to_input(labels[:, None].repeat(1, 2, 1, 1), None, label_nc=3, use_instance=False)
    assert xt.shape == (1, 2, 3, 2, 3)
    with pytest.raises(V2VError, match="label id 2"):
        labels_to_input(labels, None, label_nc=2, use_instance=False)


def test_pix2pixhd_layout(cs):
    ds = PairedImageDataset(cs / "pix2pixHD", "train", label_nc=35, size=(64, 128))
    assert len(ds) == 2 and ds.use_instance
    it = ds[0]
    assert it["name"] == "aachen_000000_000019"
    assert it["labels"].shape == (64, 128) and it["images"].shape == (3, 64, 128)
    ids = it["instances"].unique()
    assert int(ids.max()) > 1000
    cls = torch.where(ids >= 1000, ids // 1000, ids)
    assert int(cls.max()) <= 33
    # ground-truth maps contain void ids (< 7)
    assert int(it["labels"].min()) < 7
    test = PairedImageDataset(cs / "pix2pixHD", "test", label_nc=35, size=(32, 64))
    assert len(test) == 8 and "images" not in test[0]
    assert test[0]["name"] == "frankfurt_000000_000576"


def test_video_folder_pairs_same_video_and_deterministic(shared):
    root = shared / "data/animation/driving"
    ds = VideoFolderDataset(root, mode="pairs", size=(32, 32), seed=3, repeats=2)
    assert len(ds) == 4 and [v.name for v in ds.videos] == ["00.mp4", "08.mp4"]
    a = ds[1]  # 08.mp4
    assert a["name"] == "08" and a["source"].shape == (3, 32, 32)
    i, j = a["frame_ids"].tolist()
    assert 0 <= i <= j < 150  # FOMM: sorted, drawn with replacement
    # both frames really come from 08.mp4 at those indices
    from v2v.data.image import resize_image
    from v2v.data.video import open_video

    ref = open_video(root / "08.mp4").read([i, j])
    for k, key in enumerate(("source", "driving")):
        exp = torch.from_numpy(resize_image(ref[k], (32, 32))).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(a[key], exp)
    b = ds[1]
    torch.testing.assert_close(a["source"], b["source"])
    assert a["frame_ids"].tolist() == b["frame_ids"].tolist()
    ds.set_epoch(1)
    assert ds[1]["frame_ids"].tolist() != [i, j]


def test_video_folder_flip_consistent(shared):
    root = shared / "data/animation/driving"
    plain = VideoFolderDataset(root, size=(32, 32), seed=11, split=None)
    aug = VideoFolderDataset(root, size=(32, 32), seed=11, augment={"flip": True})
    seen = set()
    for idx in range(1, 2 * 4, 2):  # 08.mp4 under different epochs
        plain.set_epoch(idx)
        aug.set_epoch(idx)
        p, q = plain[1], aug[1]
        assert p["frame_ids"].tolist() == q["frame_ids"].tolist()
        flipped = torch.equal(q["source"], p["source"].flip(-1))
        if not flipped:
            assert torch.equal(q["source"], p["source"])
        # same decision for the driving frame
        assert torch.equal(q["driving"], p["driving"].flip(-1) if flipped else p["driving"])
        seen.add(flipped)
    assert seen == {True, False}


def test_video_folder_clips_timeflip_jitter_and_global_rng(tmp_path):
    from v2v.data.video import write_video

    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (8, 12, 16, 3), dtype=np.uint8)
    write_video(tmp_path / "train" / "v1", clip, 10)  # a frame folder
    ds = VideoFolderDataset(tmp_path, mode="clips", n_frames=3, stride=2, size=None, split="train", seed=0)
    it = ds[0]
    ids = it["frame_ids"].tolist()
    assert ids[1] - ids[0] == 2 and ids[2] - ids[1] == 2
    exp = torch.from_numpy(clip[ids]).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(it["video"], exp)
    tf = VideoFolderDataset(
        tmp_path,
        mode="clips",
        n_frames=3,
        stride=2,
        size=None,
        split="train",
        seed=0,
        augment={"time_flip": True},
    )
    found = False
    for e in range(6):
        tf.set_epoch(e)
        ds.set_epoch(e)
        a, b = ds[0], tf[0]
        if b["frame_ids"].tolist() == a["frame_ids"].tolist()[::-1]:
            torch.testing.assert_close(b["video"], a["video"].flip(0))
            found = True
    assert found
    jt = VideoFolderDataset(
        tmp_path,
        mode="clips",
        n_frames=3,
        size=None,
        split="train",
        seed=0,
        augment={"jitter": {"brightness": 0.3}},
    )
    a, b = VideoFolderDataset(tmp_path, mode="clips", n_frames=3, size=None, split="train", seed=0)[0], jt[0]
    m = (a["video"] > 0.2) & (a["video"] < 0.7)
    ratio = b["video"][m] / a["video"][m]
    assert (
        float(ratio.std()) < 1e-3 and abs(float(ratio.mean()) - 1) > 1e-3
    )  # one brightness factor for every frame
    # seed=None: the global torch RNG decides (the trainer seeds it per item)
    g = VideoFolderDataset(tmp_path, mode="clips", n_frames=3, size=None, split="train")
    torch.manual_seed(5)
    x = g[0]["frame_ids"].tolist()
    torch.manual_seed(5)
    assert g[0]["frame_ids"].tolist() == x
    with pytest.raises(V2VError, match="fewer than"):
        VideoFolderDataset(tmp_path, mode="clips", n_frames=9, split="train", seed=0)[0]
    with pytest.raises(V2VError, match="test: video folder not found"):
        VideoFolderDataset(tmp_path, split="test")


def test_video_folder_strip_images_and_whole_video(tmp_path):
    """FOMM's 'image of concatenated frames' format and n_frames=None (whole video)."""
    from v2v.data.image import write_image

    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    write_image(tmp_path / "strip.png", np.concatenate(list(frames), axis=1))  # 8 x 40
    ds = VideoFolderDataset(tmp_path, mode="clips", n_frames=None, size=None, seed=0)
    it = ds[0]
    assert it["name"] == "strip" and it["frame_ids"].tolist() == [0, 1, 2, 3, 4]
    torch.testing.assert_close(it["video"], torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
    pairs = VideoFolderDataset(tmp_path, mode="pairs", size=(4, 4), seed=0)[0]
    i, j = pairs["frame_ids"].tolist()
    assert i <= j and pairs["source"].shape == (3, 4, 4)
    write_image(tmp_path / "strip.png", np.zeros((8, 20, 3), np.uint8))
    with pytest.raises(V2VError, match=r"strip\.png: width 20 is not a multiple of the frame width 8"):
        VideoFolderDataset(tmp_path, mode="clips", n_frames=None, size=None, seed=0)[0]


def test_toycity_flow_loaded_with_backward_convention(tmp_path):
    """Integration with the synthetic generator: flowprev warps frame t-1 onto frame t."""
    from v2v.data.synthetic import toycity
    from v2v.ops.warp import warp

    toycity.generate_toycity(tmp_path, videos=1, frames=3, size=(32, 64), seed=1, progress=False)
    ds = LabelSequenceDataset(tmp_path, "train", n_frames=3, label_nc=toycity.LABEL_NC)
    it = ds[0]
    assert it["flow"].shape == (2, 2, 32, 64) and it["flowprev"].shape == (2, 2, 32, 64)
    assert it["occprev"].shape == (2, 1, 32, 64)
    assert int(it["instances"].max()) >= 1000  # toycity writes label*1000+k instance ids
    img = it["images"]
    for t in (1, 2):
        pred = warp(img[t - 1 : t], it["flowprev"][t - 1 : t])
        valid = it["occprev"][t - 1 : t] < 0.5
        err = (pred - img[t : t + 1]).abs().mean(1, keepdim=True)[valid]
        assert valid.float().mean() > 0.5
        assert float(err.mean()) < 0.02
        # and the flow is not trivially zero: the unwarped frame differs more
        assert float((img[t - 1 : t] - img[t : t + 1]).abs().mean(1, keepdim=True)[valid].mean()) > float(
            err.mean()
        )


def test_video_folder_reads_synthetic_puppets_layout(tmp_path):
    """``<video>/frames/*.png`` (v2v.data.synthetic) is one video named after its folder."""
    from v2v.data.video import write_video

    rng = np.random.default_rng(4)
    clip = rng.integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    write_video(tmp_path / "train" / "vid0000" / "frames", clip, 10)
    (tmp_path / "train" / "vid0000" / "openpose").mkdir()
    ds = VideoFolderDataset(tmp_path, mode="clips", n_frames=None, size=None, split="train", seed=0)
    assert ds.names == ["vid0000"] and len(ds) == 1
    it = ds[0]
    assert it["name"] == "vid0000"
    torch.testing.assert_close(it["video"], torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255)


def test_imaginaire_layout_matches_vid2vid_frames(cs):
    """imaginaire seg_maps are byte-identical to vid2vid train_A; PNG frames ~= the vid2vid JPEGs."""
    im = LabelSequenceDataset(
        cs / "imaginaire_street", layout="imaginaire", n_frames=2, label_nc=35, clip_step=9
    )
    assert [(s["name"], len(s["labels"])) for s in im.seqs] == [("seq0001", 4)] and not im.use_instance
    v2 = LabelSequenceDataset(
        cs / "vid2vid", "train", n_frames=2, label_nc=35, max_frames=4, use_instance=False
    )
    a, b = im[0], v2[v2.items.index((1, 0))]
    assert b["seq"] == "seq0001"
    assert torch.equal(a["labels"], b["labels"])
    mad = (a["images"] - b["images"]).abs().mean() * 255
    assert 0.3 < float(mad) < 2.5  # README: JPEG vs lossless PNG differ by ~1.1 grey levels
