"""The `v2v` command's skeleton: help, info, one-line user errors, config key suggestions."""
import subprocess
import sys

from v2v.config import load_config
from v2v.errors import V2VError


def _v2v(*args):
    return subprocess.run([sys.executable, "-m", "v2v", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_registered_command():
    r = _v2v("--help")
    assert r.returncode == 0
    for cmd in ("info", "train", "animate", "generate", "dance", "pose", "convert", "parity", "eval", "demo", "data"):
        assert cmd in r.stdout
    r = _v2v("parity", "--help")
    assert r.returncode == 0 and all(s in r.stdout for s in ("fomm", "vid2vid", "dance"))


def test_info_reports_versions_and_device(run_cli):
    rc, out, _ = run_cli("info", "--device", "cpu")
    assert rc == 0
    assert "torch" in out and "device: cpu" in out and "vgg19" in out


def test_misspelled_config_key_is_one_line_naming_the_closest_key(tmp_path):
    cfg = tmp_path / "x.yaml"
    cfg.write_text("system: toy\ntrain:\n  stpes: 3\n")
    r = _v2v("train", "--config", str(cfg), "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "train.stpes" in lines[0] and "did you mean 'train.steps'" in lines[0]
    assert "Traceback" not in r.stderr


def test_verbose_shows_the_traceback(tmp_path):
    r = _v2v("-v", "train", "--config", str(tmp_path / "missing.yaml"))
    assert r.returncode != 0 and "Traceback" in r.stderr and "missing.yaml" in r.stderr


def test_config_loader_coerces_types_and_rejects_unknown_overrides():
    from dataclasses import dataclass, field

    @dataclass
    class Inner:
        lr: float = 1e-3
        sizes: tuple[int, int] = (64, 64)

    @dataclass
    class Root:
        name: str = "x"
        inner: Inner = field(default_factory=Inner)

    cfg = load_config({"inner": {"lr": 1}}, Root, overrides=["inner.sizes=[32,48]", "name=abc"])
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.sizes == (32, 48) and cfg.name == "abc"
    try:
        load_config({}, Root, overrides=["inner.lrr=3"])
    except V2VError as exc:
        assert "inner.lrr" in str(exc) and "inner.lr" in str(exc)
    else:
        raise AssertionError("unknown override accepted")
