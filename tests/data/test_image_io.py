"""Image / label-map I/O: RGBA compositing, 16-bit handling, lossless label maps, atomic writes."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch

from v2v.data.image import (
    load_image_tensor,
    read_image,
    read_label_map,
    resize_image,
    to_rgb_uint8,
    to_tensor,
    to_uint8,
    write_image,
    write_label_map,
)
from v2v.errors import V2VError


def test_rgba_doll_composited_over_white(shared):
    p = shared / "data/animation/source/doll-06.png"
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)  # BGRA
    assert raw.shape == (1030, 998, 4)
    img = read_image(p)
    assert img.dtype == np.uint8 and img.shape == (1030, 998, 3)
    a = raw[..., 3]
    transparent = a == 0
    opaque = a == 255
    assert transparent.sum() > 0 and opaque.sum() > 0
    # fully transparent -> white; fully opaque -> unchanged colour (RGB order)
    assert (img[transparent] == 255).all()
    np.testing.assert_array_equal(img[opaque], raw[..., 2::-1][opaque])
    # the transparent strip is the right edge (README: 6 px)
    assert (a[:, -6:] == 0).all()


def test_compositing_rule_partial_alpha():
    rgba = np.array([[[200, 100, 0, 128], [10, 20, 30, 0], [10, 20, 30, 255]]], np.uint8)
    out = to_rgb_uint8(rgba)
    al = 128 / 255
    exp0 = np.rint(np.array([200, 100, 0]) * al + 255 * (1 - al))
    np.testing.assert_array_equal(out[0, 0], exp0)
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 2], [10, 20, 30])


def test_gray_and_16bit_rgb(tmp_path):
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(tmp_path / "g.png"), g)
    img = read_image(tmp_path / "g.png")
    assert img.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], g)
    rgb16 = np.zeros((2, 2, 3), np.uint16)
    rgb16[0, 0] = [65535, 257 * 10, 0]  # RGB
    rgb16[1, 1] = [257 * 128, 1000, 65535]
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])
    img = read_image(tmp_path / "c16.png")
    np.testing.assert_array_equal(img[0, 0], [255, 10, 0])
    np.testing.assert_array_equal(img[1, 1], [128, round(1000 / 257), 255])


def test_cityscapes_16bit_instance_map_exact(shared):
    p = shared / "data/cityscapes_seq/pix2pixHD/train_inst/aachen_000000_000019_gtFine_instanceIds.png"
    ref = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert ref.dtype == np.uint16
    lab = read_label_map(p)
    assert lab.dtype == np.int32 and lab.shape == (1024, 2048)
    np.testing.assert_array_equal(lab, ref.astype(np.int32))
    ids = np.unique(lab)
    big = ids[ids >= 1000]
    assert len(big) > 0 and big.max() > 255
    cls = np.where(ids >= 1000, ids // 1000, ids)
    assert cls.max() <= 33
    assert set((big // 1000).tolist()) <= set(range(24, 34))  # instance classes only
    # class of instance pixels agrees with the official labelIds map
    labels = read_label_map(str(p).replace("train_inst", "train_label").replace("instanceIds", "labelIds"))
    m = lab >= 1000
    np.testing.assert_array_equal(lab[m] // 1000, labels[m])


def test_label_map_roundtrip_8_and_16_bit(tmp_path):
    rng = np.random.default_rng(0)
    a8 = rng.integers(0, 35, (7, 9)).astype(np.int32)
    write_label_map(tmp_path / "a.png", a8)
    assert cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint8
    np.testing.assert_array_equal(read_label_map(tmp_path / "a.png"), a8)
    a16 = a8 * 1000 + 3
    write_label_map(tmp_path / "b.png", torch.from_numpy(a16))
    assert cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    np.testing.assert_array_equal(read_label_map(tmp_path / "b.png"), a16)
    with pytest.raises(V2VError, match="65535"):
        write_label_map(tmp_path / "c.png", np.full((2, 2), 70000))
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]  # no temp files left


def test_label_map_rejects_colour_image(shared):
    p = shared / "data/cityscapes_seq/pix2pixHD/train_img/aachen_000000_000019_leftImg8bit.png"
    with pytest.raises(V2VError, match="aachen_000000_000019_leftImg8bit.png: is a colour image"):
        read_label_map(p)


def test_label_map_palette_png_gives_indices(tmp_path):
    from PIL import Image

    idx = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_label_map(tmp_path / "p.png"), idx)
    np.testing.assert_array_equal(read_image(tmp_path / "p.png")[0, 0], [255, 0, 0])


def test_unreadable_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(V2VError, match=r"bad\.png: cannot decode"):
        read_image(bad)
    with pytest.raises(V2VError, match=r"missing\.jpg: file not found"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(V2VError, match=r"bad\.png"):
        read_label_map(bad)


def test_tensor_conversions_and_write(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    t = to_tensor(img)
    assert t.shape == (3, 5, 6) and t.dtype == torch.float32
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    np.testing.assert_array_equal(to_uint8(t), img)
    np.testing.assert_array_equal(to_uint8(t[None])[0], img)
    write_image(tmp_path / "x.png", t)  # float tensor path
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), img)
    write_image(tmp_path / "y.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "y.png"), img)
    smooth = np.broadcast_to(np.linspace(0, 255, 6, dtype=np.uint8)[None, :, None], (5, 6, 3)).copy()
    write_image(tmp_path / "z.jpg", smooth)  # quality 95
    assert np.abs(read_image(tmp_path / "z.jpg").astype(int) - smooth).max() <= 6
    lt = load_image_tensor(tmp_path / "y.png")
    assert lt.shape == (1, 3, 5, 6)
    torch.testing.assert_close(lt[0], t)
    assert sorted(os.listdir(tmp_path)) == ["x.png", "y.png", "z.jpg"]


def test_resize_image_modes():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:, 2:] = 200
    small = resize_image(img, (2, 2))  # area
    np.testing.assert_array_equal(small[:, 0], 0)
    np.testing.assert_array_equal(small[:, 1], 200)
    lab = np.array([[1, 1, 30001, 30001]] * 4, np.int32)
    up = resize_image(lab, (8, 8))  # int32 -> nearest
    assert up.dtype == np.int32 and set(np.unique(up)) == {1, 30001}
    t = torch.rand(1, 3, 8, 8)
    r = resize_image(t, (4, 4))
    assert r.shape == (1, 3, 4, 4)
    torch.testing.assert_close(r.mean(), t.mean(), atol=1e-2, rtol=0)
    li = torch.tensor([[0, 5], [7, 9]])
    np.testing.assert_array_equal(resize_image(li, (4, 4)).numpy(), np.kron(li.numpy(), np.ones((2, 2), int)))
