"""Property-based fuzzing of every reader of user files: the result is a clean parse or a V2VError.

Bounded: derandomized (the same examples on every run), a fixed number of examples per reader
and no example database, so the whole file takes a few seconds.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2v.errors import V2VError

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


_DIR = tempfile.TemporaryDirectory(prefix="v2v-fuzz-")  # one folder, files overwritten per example


def _write(name: str, data) -> str:
    p = os.path.join(_DIR.name, name)
    with open(p, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return p


def _clean_or_v2verror(fn, *args):
    try:
        return fn(*args)
    except V2VError as e:
        assert "\n" not in str(e) and "Traceback" not in str(e)
        return None


# ------------------------------------------------------------------------------ OpenPose JSON
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**30), 10**30),
                    st.sampled_from([0, 1, 0.5, 1e308, -1e308]))
json_leaf = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
json_any = st.recursive(json_leaf, lambda c: st.one_of(st.lists(c, max_size=6),
                                                       st.dictionaries(st.text(max_size=6), c, max_size=5)),
                        max_leaves=30)
keypoint_list = st.one_of(st.lists(numbers, min_size=0, max_size=80),
                          st.sampled_from([54, 69, 75, 63, 210]).flatmap(
                              lambda n: st.lists(st.one_of(numbers, json_leaf), min_size=n, max_size=n)))
person = st.fixed_dictionaries({}, optional={
    "pose_keypoints_2d": st.one_of(keypoint_list, json_any),
    "face_keypoints_2d": st.one_of(keypoint_list, json_any),
    "hand_left_keypoints_2d": keypoint_list,
    "hand_right_keypoints_2d": keypoint_list})
openpose_doc = st.one_of(st.fixed_dictionaries({"people": st.lists(st.one_of(person, json_any), max_size=3)}),
                         json_any)


@FUZZ
@given(doc=openpose_doc, cut=st.one_of(st.none(), st.integers(0, 400)))
def test_openpose_json_reader(doc, cut):
    from v2v.data.pose import read_openpose_json

    text = json.dumps(doc, allow_nan=True)
    if cut is not None:
        text = text[:cut]
    fr = _clean_or_v2verror(read_openpose_json, _write("f_keypoints.json", text))
    if fr is not None:
        for part in (fr.body, fr.face, fr.hand_left, fr.hand_right):
            assert np.isfinite(part).all() and (np.abs(part[:, :2]) <= 1e5).all()


@FUZZ
@given(raw=st.binary(max_size=300))
def test_openpose_json_reader_bytes(raw):
    from v2v.data.pose import read_openpose_json

    _clean_or_v2verror(read_openpose_json, _write("f_keypoints.json", raw))


# ------------------------------------------------------------------------------ EDN / OpenCV YAML
yml_number = st.one_of(numbers.map(lambda v: repr(float(v)) if isinstance(v, float) else str(v)),
                       st.sampled_from(["nan", "inf", "-inf", "1e999", "x", "", ".", "-"]))


@FUZZ
@given(sizes=st.lists(st.integers(-3, 30), max_size=4), data=st.lists(yml_number, max_size=90),
       header=st.booleans(), close=st.booleans(), junk=st.text(max_size=20))
def test_edn_yaml_reader(sizes, data, header, close, junk):
    from v2v.data.pose import read_openpose_yml

    lines = (["%YAML:1.0"] if header else []) + ["pose_0: !!opencv-nd-matrix",
                                                 f"   sizes: [ {', '.join(map(str, sizes))} ]", "   dt: d",
                                                 "   data: [ " + ", ".join(data) + (" ]" if close else ""), junk]
    p = _write("frame000000_pose.yml", "\n".join(lines))
    fr = _clean_or_v2verror(read_openpose_yml, p)
    if fr is not None:
        assert np.isfinite(fr.body).all()


# ------------------------------------------------------------------------------ images, label maps
def _chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _png(w, h, depth, color_type, payload):
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(payload)) + _chunk(b"IEND", b""))


png_bytes = st.builds(_png, st.integers(0, 40), st.integers(0, 40), st.sampled_from([1, 2, 4, 8, 16, 3]),
                      st.sampled_from([0, 2, 3, 4, 6, 1]), st.binary(max_size=400))


@FUZZ
@given(data=st.one_of(png_bytes, st.binary(max_size=200)), flips=st.lists(st.integers(0, 10**6), max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 200)), ext=st.sampled_from([".png", ".jpg", ".bmp", ".webp"]))
def test_image_and_label_map_readers(data, flips, cut, ext):
    from v2v.data.image import read_image, read_label_map

    b = bytearray(data)
    for f in flips:
        if b:
            b[f % len(b)] ^= 0xFF
    if cut is not None:
        b = b[:cut]
    p = _write("img" + ext, bytes(b))
    img = _clean_or_v2verror(read_image, p)
    if img is not None:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    lab = _clean_or_v2verror(read_label_map, p)
    if lab is not None:
        assert lab.dtype == np.int32 and lab.ndim == 2


# ------------------------------------------------------------------------------ option files
OPTION_NAMES = ["ngf", "ndf", "netG", "norm", "label_nc", "output_nc", "n_downsample_global", "n_blocks_global",
                "no_instance", "use_l1", "lambda_feat", "lr", "fineSize", "num_D", "face_generator", "gpu_ids",
                "max_dataset_size", "name", "weird key", ""]
opt_value = st.one_of(st.sampled_from(["64", "True", "False", "None", "[0, 1", "[0, 1]", "inf", "abc", "1e999",
                                       "2**40", "1099511627776", "-3", "{'a': 1}", "()", "'x'", ""]),
                      st.text(max_size=12))


@FUZZ
@given(items=st.lists(st.tuples(st.sampled_from(OPTION_NAMES), opt_value), max_size=12),
       cut=st.one_of(st.none(), st.integers(0, 300)), rule=st.booleans())
def test_opt_txt_parser(items, cut, rule):
    from v2v.compat.common import read_options

    text = ("------------ Options -------------\n" if rule else "") + "".join(
        f"{k}: {v}\t[default: 1]\n" for k, v in items)
    if cut is not None:
        text = text[:cut]
    opts = _clean_or_v2verror(read_options, _write("opt.txt", text))
    assert opts is None or isinstance(opts, dict)


@FUZZ
@given(doc=st.one_of(st.dictionaries(st.sampled_from(OPTION_NAMES), json_any, max_size=8),
                     st.fixed_dictionaries({"options": json_any}), json_any),
       cut=st.one_of(st.none(), st.integers(0, 200)), name=st.sampled_from(["options.json", "config.json"]))
def test_options_json_parser(doc, cut, name):
    from v2v.compat.common import read_options

    text = json.dumps(doc, allow_nan=True)
    if cut is not None:
        text = text[:cut]
    opts = _clean_or_v2verror(read_options, _write(name, text))
    assert opts is None or isinstance(opts, dict)


@FUZZ
@given(model=st.dictionaries(st.sampled_from(["ngf", "ndf", "n_blocks_global", "face_ngf", "netG", "norm", "vgg",
                                              "l1_weight", "num_D", "bogus"]),
                             st.one_of(json_leaf, st.integers(-(2**45), 2**45)), max_size=6))
def test_v2v_yaml_config_loader(model):
    import yaml

    from v2v.train.config import load_experiment

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(repo, "configs", "dance", "puppets.yaml"), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data["model"].update(model)
    p = _write("exp.yaml", yaml.safe_dump(data))
    _clean_or_v2verror(load_experiment, p, [])
