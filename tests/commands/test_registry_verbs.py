"""CLI verbs built from the system registry: generic convert / parity, per-system verbs, train."""
from __future__ import annotations

from pathlib import Path

import torch

from v2v.cli import build_parser
from v2v.registry import all_systems

REPO = Path(__file__).resolve().parents[2]


def _choices(parser, group: str) -> set[str]:
    sub = next(a for a in parser._subparsers._group_actions if group in a.choices)
    gp = sub.choices[group]
    return set(next(a for a in gp._subparsers._group_actions).choices)


def test_every_system_with_a_compat_module_gets_convert_and_parity():
    parser = build_parser()
    convert, parity = _choices(parser, "convert"), _choices(parser, "parity")
    for name, spec in all_systems().items():
        if spec.compat:
            assert name in parity and name in convert, name
    assert not all_systems()["toy"].compat and "toy" not in convert and "toy" not in parity  # no official format


def test_commands_come_from_pkgutil_and_the_registry_without_hand_kept_lists():
    from v2v import cli

    assert not hasattr(cli, "COMMAND_MODULES") and not hasattr(cli, "SYSTEMS")
    top = set(next(a for a in build_parser()._subparsers._group_actions).choices)
    assert {"info", "data", "train", "eval", "demo"} <= top  # v2v/commands modules
    assert {"dance", "animate", "generate", "pose"} <= top  # the systems' commands= modules


def test_generic_convert_is_load_plus_save_pretrained(shared, tmp_path, run_cli):
    import v2v

    fx = shared / "fixtures" / "edn"
    rc, _out, err = run_cli("convert", "dance", fx, "--out", tmp_path / "c")
    assert rc == 0, err
    assert (tmp_path / "c" / "dance.safetensors").is_file() and (tmp_path / "c" / "dance.yaml").is_file()
    a, b = v2v.load(fx), v2v.load(tmp_path / "c")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    # the wrong system's verb on these files is a one-line error, nothing written
    rc, _out, err = run_cli("convert", "fomm", fx, "--config", fx / "opt.txt", "--out", tmp_path / "x")
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_generic_parity_errors_are_one_line_exit_2(tmp_path, run_cli):
    """Exit 0 (PASS) and 1 (a perturbed array) through this verb are checked by
    tests/compat/test_dance_parity.py; bad folders are user errors."""
    rc, _out, err = run_cli("parity", "dance", tmp_path / "missing")
    assert rc == 2 and err.startswith("error: fixture folder not found") and len(err.strip().splitlines()) == 1
    rc, _out, err = run_cli("parity", "dance", tmp_path)
    assert rc == 2 and "no cases.npz" in err


def test_train_finds_the_system_in_the_registry(tmp_path, run_cli):
    cfg = tmp_path / "x.yaml"
    cfg.write_text((REPO / "configs" / "toy" / "squares.yaml").read_text())
    rc, _out, err = run_cli("train", "--config", cfg, "--out", tmp_path / "run", "--steps", "1", "--no-progress",
                            "train.batch_size=2")
    assert rc == 0, err
    rc, _out, err = run_cli("train", "--config", cfg, "system=toyy", "--out", tmp_path / "run2")
    assert rc == 2 and "toyy" in err and "toy" in err and len(err.strip().splitlines()) == 1
