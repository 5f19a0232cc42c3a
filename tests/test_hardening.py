"""Hardening: outputs never destroy inputs, never go through symlinks, keep umask permissions;
every failure is one line without -v (paths, option files, configs, checkpoints, fixtures)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from v2v.errors import V2VError
from v2v.utils import atomic_write, check_output_path


def _one_line_error(rc, err, code=2):
    assert rc == code, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "\x1b" not in err


@pytest.fixture
def media(tmp_path):
    from v2v.data.image import write_image
    from v2v.data.video import write_video

    clip = (np.random.default_rng(0).random((3, 16, 16, 3)) * 255).astype(np.uint8)
    write_video(tmp_path / "drv.mp4", clip, 5)
    write_video(tmp_path / "frames", clip, 5)
    write_image(tmp_path / "src.png", clip[0])
    (tmp_path / "labels").mkdir()
    write_image(tmp_path / "labels" / "000.png", clip[0])
    (tmp_path / "cfg.yaml").write_text("model: {}\n")
    (tmp_path / "ck.safetensors").write_bytes(b"x")
    return tmp_path


def test_output_equal_to_containing_or_inside_an_input_is_refused(media, run_cli, monkeypatch):
    monkeypatch.chdir(media)
    before = {p: p.stat().st_mtime_ns for p in media.rglob("*") if p.is_file()}
    common = ["--config", "cfg.yaml", "--checkpoint", "ck.safetensors"]
    cases = [
        ["animate", *common, "--source", "src.png", "--driving", "drv.mp4", "--out", "drv.mp4"],
        ["animate", *common, "--source", "src.png", "--driving", "drv.mp4", "--out", "./drv.mp4"],
        ["animate", *common, "--source", "src.png", "--driving", "frames", "--out", "frames/"],
        ["animate", *common, "--source", "src.png", "--driving", "frames", "--out", "frames/sub"],
        ["animate", *common, "--source", "src.png", "--driving", "drv.mp4", "--out", "."],
        ["generate", "vid2vid", *common, "--labels", "labels", "--out", "labels"],
        ["generate", "vid2vid", *common, "--labels", "labels", "--out", "labels/../labels/"],
        ["eval", "--pred", "drv.mp4", "--gt", "frames", "--json", "drv.mp4"],
        ["pose", "render", "labels", "--out", "labels"],
    ]
    os.symlink(media / "drv.mp4", media / "link.mp4")
    cases.append(["animate", *common, "--source", "src.png", "--driving", "drv.mp4", "--out", "link.mp4"])
    for argv in cases:
        rc, _out, err = run_cli(*argv)
        _one_line_error(rc, err)
        assert "input" in err, (argv, err)
    assert before == {p: p.stat().st_mtime_ns for p in media.rglob("*") if p.is_file() and p.name != "link.mp4"}


def test_dance_source_pose_folder_as_out_is_refused(tmp_path, run_cli):
    src = tmp_path / "poses"
    src.mkdir()
    (src / "frame000000_keypoints.json").write_text('{"people": []}')
    rc, _, err = run_cli("dance", "--config", "configs/dance/puppets.yaml", "--checkpoint", tmp_path / "x.safetensors",
                         "--source-video", src, "--target-stats", src, "--out", src)
    _one_line_error(rc, err)
    assert (src / "frame000000_keypoints.json").read_text() == '{"people": []}'


def test_output_under_a_file_or_unwritable_is_refused_before_work(tmp_path, run_cli, monkeypatch):
    (tmp_path / "afile").write_text("x")
    rc, _, err = run_cli("data", "synth", "puppets", "--out", tmp_path / "afile" / "sub")
    _one_line_error(rc, err)
    assert "is a file" in err
    with pytest.raises(V2VError, match="is a file"):
        check_output_path(tmp_path / "afile" / "x" / "y.json")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    real_access = os.access
    if os.geteuid() == 0:  # root may write into a 0555 folder: let the check see what a user would
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == str(ro)
                            else real_access(p, mode, **kw))
    try:
        with pytest.raises(V2VError, match="cannot write in"):
            check_output_path(ro / "out.mp4")
        rc, _, err = run_cli("pose", "render", tmp_path / "afile", "--out", ro / "labels")
        _one_line_error(rc, err)
        assert "cannot write" in err
    finally:
        os.chmod(ro, 0o755)


def test_atomic_outputs_keep_umask_permissions_and_replace_symlinks(tmp_path):
    from v2v.data.image import write_image
    from v2v.data.video import write_video

    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, tmp_path / "out.json")
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.json", "w") as f:
            f.write("{}")
        write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
        write_video(tmp_path / "v.mp4", np.zeros((2, 8, 8, 3), np.uint8), 5)
        write_video(tmp_path / "fr", np.zeros((2, 8, 8, 3), np.uint8), 5)
        os.umask(0o077)
        with atomic_write(tmp_path / "private.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert victim.read_text() == "keep" and not (tmp_path / "out.json").is_symlink()
    for name in ("out.json", "a.png", "v.mp4"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert (tmp_path / "fr").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_failure_midway_leaves_no_partial_output(tmp_path, run_cli):
    seq = tmp_path / "seq"
    seq.mkdir()
    body = [100.0, 100.0, 1.0] * 25
    (seq / "frame000000_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": body}]}))
    (seq / "frame000001_keypoints.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2')
    rc, _, err = run_cli("pose", "render", seq, "--out", tmp_path / "labels", "--size", "32")
    _one_line_error(rc, err)
    assert not (tmp_path / "labels").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]


def test_unexpected_exception_is_one_line_without_v(run_cli, monkeypatch):
    from v2v.commands import info

    def boom(args):
        raise ValueError("bad \x1b[31mthing\x1b[0m\nsecond line")

    monkeypatch.setattr(info, "run", boom, raising=False)
    from v2v.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["info"])
    args.func = boom
    monkeypatch.setattr("v2v.cli.build_parser", lambda: _Fixed(parser, args))
    rc, _, err = run_cli("info")
    _one_line_error(rc, err, code=1)
    assert "ValueError" in err and "-v" in err


class _Fixed:
    def __init__(self, parser, args):
        self.parser, self.args = parser, args

    def parse_args(self, argv):
        return self.args

    def print_help(self):
        self.parser.print_help()


def test_error_messages_drop_escape_codes():
    assert str(V2VError("a \x1b[31mred\x1b[0m b\x07")) == "a red b"


def test_checkpoint_errors_never_suggest_unsafe_loading(tmp_path):
    import torch

    from v2v.compat.common import torch_load_official
    from v2v.weights_io import read_weights

    class Evil:
        def __reduce__(self):
            return (print, ("\x1b[31mpwned\x1b[0m",))

    torch.save({"w": torch.zeros(1), "e": Evil()}, tmp_path / "evil.pth")
    (tmp_path / "trunc.pth").write_bytes((tmp_path / "evil.pth").read_bytes()[:60])
    for f in ("evil.pth", "trunc.pth"):
        for fn in (torch_load_official, read_weights):
            with pytest.raises(V2VError) as ei:
                fn(tmp_path / f)
            msg = str(ei.value)
            assert "weights_only=False" not in msg and "\x1b" not in msg and "\n" not in msg, msg
    with pytest.raises(V2VError, match="not a plain weights file.*trusted machine"):
        torch_load_official(tmp_path / "evil.pth")


@pytest.mark.parametrize(("name", "text", "match"), [
    ("opt.txt", "------------ Options -------------\nnetG: global\nngf: abc\n", "'ngf' must be an integer"),
    ("opt.txt", "netG: global\nngf: 1099511627776\n", "out of range"),
    ("opt.txt", "netG: global\nno_instance: 7\n", "True or False"),
    ("opt.txt", "netG: global\nlr: [0.1\n", "finite number"),
    ("options.json", '{"netG": "global", "ngf": 64, "n_blocks_global": ', "invalid JSON"),
    ("config.json", '{"netG": ["global"], "ngf": 64}', "must be a name"),
    ("config.json", '{"netG": "global", "ndf": -4}', "out of range"),
    ("config.json", "[" * 100000, "invalid JSON"),
])
def test_option_files_of_wrong_types_or_truncated(tmp_path, name, text, match):
    from v2v.compat.common import read_options

    (tmp_path / name).write_text(text)
    with pytest.raises(V2VError, match=match):
        read_options(tmp_path / name, required="netG")


def test_absurd_sizes_in_v2v_yaml_refused_before_allocating(tmp_path, run_cli):
    rc, _, err = run_cli("train", "--config", "configs/dance/puppets.yaml", "--out", tmp_path / "run",
                         "model.ngf=1099511627776")
    _one_line_error(rc, err)
    assert "out of range" in err and not (tmp_path / "run").exists()


def test_parity_on_pickled_cases_is_one_line(tmp_path, shared, run_cli):
    from v2v.compat.report import load_cases

    fx = tmp_path / "edn"
    fx.mkdir()
    for f in (shared / "fixtures" / "edn").iterdir():
        if f.name not in ("cases.npz", "render.npz", "posenorm.npz"):
            os.symlink(f, fx / f.name)
    np.savez(fx / "cases.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(V2VError, match="pickled"):
        load_cases(fx / "cases.npz")
    rc, _, err = run_cli("parity", "dance", fx)
    _one_line_error(rc, err)
    assert "pickled" in err


def test_native_stderr_is_hidden_without_v(capfd):
    from v2v.data.video import quiet_stderr

    with quiet_stderr():
        os.write(2, b"[h264 @ 0x55] Invalid NAL unit size\n")
    assert capfd.readouterr().err == ""
