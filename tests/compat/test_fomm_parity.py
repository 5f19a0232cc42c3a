"""FOMM official compatibility: fixture parity, conversion, other configs, clear errors."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml

from v2v.compat import fomm as cf
from v2v.errors import V2VError


@pytest.fixture(scope="module")
def fixture_dir(shared):
    return shared / "fixtures" / "fomm"


def test_parity_cli_passes(fixture_dir, run_cli):
    rc, out, _ = run_cli("parity", "fomm", fixture_dir)
    assert rc == 0, out
    last = out.strip().splitlines()[-1]
    assert "60/60 arrays within tolerance" in last and last.endswith("PASS")
    # every array is reported with its error, all well inside the tolerance
    errs = [float(line.split("max|diff|")[1].split()[0]) for line in out.splitlines() if "max|diff|" in line]
    assert len(errs) == 60 and max(errs) < 5e-5


def test_contract_functions(fixture_dir):
    """detect / read_official / config_from_official / checkpoint_filter_fn / run_parity, and the
    one key table inverting exactly."""
    from v2v.compat.report import ParityReport

    ckpt, cfg = str(fixture_dir / "00000099-checkpoint.pth.tar"), str(fixture_dir / "config.yaml")
    assert cf.detect(ckpt, cfg) and not cf.detect(ckpt, None)
    options, official = cf.read_official(ckpt, cfg)
    assert {k.split(".")[0] for k in official} == {"kp_detector", "generator"}  # D and optimizers dropped
    config = cf.config_from_official(options)
    ours = cf.checkpoint_filter_fn(official, config)
    system = cf.FOMMSystem(config, inference=True)
    assert set(ours) == set(system.state_dict())
    for part in ("kp_detector", "generator"):
        sub = {k[len(part) + 1:]: v for k, v in ours.items() if k.startswith(part + ".")}
        back = cf.to_official_state_dict(part, sub)
        assert set(back) == {k[len(part) + 1:] for k in official if k.startswith(part + ".")}
    rep = cf.run_parity(fixture_dir)
    assert isinstance(rep, ParityReport) and rep.ok and len(rep.rows) == 60


def test_convert_then_load_matches_official(fixture_dir, tmp_path, run_cli):
    ckpt = fixture_dir / "00000099-checkpoint.pth.tar"
    rc, _, err = run_cli("convert", "fomm", ckpt, "--config", fixture_dir / "config.yaml", "--out", tmp_path)
    assert rc == 0, err
    ours = cf.load_fomm(tmp_path / "fomm.safetensors", tmp_path / "fomm.yaml")
    official = cf.load_fomm(ckpt, fixture_dir / "config.yaml")
    assert ours.state_dict().keys() == official.state_dict().keys()
    for a, b in zip(ours.state_dict().values(), official.state_dict().values()):
        assert torch.equal(a, b)
    cases = np.load(fixture_dir / "cases.npz")
    with torch.no_grad():
        rec = ours.reconstruct(torch.from_numpy(cases["source"]), torch.from_numpy(cases["driving"]))
    assert np.abs(rec["prediction"].numpy() - cases["rec_prediction"]).max() < 1e-4


def test_config_mismatch_is_one_clear_error(fixture_dir, tmp_path, run_cli):
    raw = yaml.safe_load((fixture_dir / "config.yaml").read_text())
    raw["model_params"]["common_params"]["num_kp"] = 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(V2VError) as ei:
        cf.load_fomm(fixture_dir / "00000099-checkpoint.pth.tar", bad)
    msg = str(ei.value)
    assert "kp_detector" in msg and "heatmap_head.weight" in msg and "(10,7,7,7)" in msg and "(5,7,7,7)" in msg
    rc, _, err = run_cli("animate", "--config", bad, "--checkpoint", fixture_dir / "00000099-checkpoint.pth.tar",
                         "--source", "x.png", "--driving", "x.mp4", "--out", tmp_path / "o.mp4")
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


VARIANT = {
    "dataset_params": {"frame_shape": [32, 32, 3]},
    "model_params": {
        "common_params": {"num_kp": 4, "num_channels": 3, "estimate_jacobian": True},
        "kp_detector_params": {"temperature": 0.1, "block_expansion": 4, "max_features": 16,
                               "scale_factor": 1, "num_blocks": 2, "single_jacobian_map": True},
        "generator_params": {"block_expansion": 4, "max_features": 16, "num_down_blocks": 1,
                             "num_bottleneck_blocks": 1, "estimate_occlusion_map": False,
                             "dense_motion_params": {"block_expansion": 4, "max_features": 16, "num_blocks": 2,
                                                     "scale_factor": 0.5}},
        "discriminator_params": {"scales": [1, 0.5], "block_expansion": 4, "max_features": 16, "num_blocks": 2,
                                 "sn": False},
    },
}


@pytest.mark.parametrize("variant", ["single_jac_no_occ_two_scales", "no_jacobian_sn_kp"])
def test_other_official_configs_roundtrip(tmp_path, variant, run_cli):
    """A fixture set made the same way from another config: official-layout checkpoint written
    from random weights via the inverse key map; parity derives everything from the YAML."""
    raw = copy.deepcopy(VARIANT)
    if variant == "no_jacobian_sn_kp":
        raw["model_params"]["common_params"]["estimate_jacobian"] = False
        raw["model_params"]["discriminator_params"].update(sn=True, use_kp=True, scales=[1])
        raw["model_params"]["generator_params"]["estimate_occlusion_map"] = True
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    torch.manual_seed(0)
    system = cf.FOMMSystem(cf.config_from_official(raw)).eval()
    ckpt = {part: cf.to_official_state_dict(part, getattr(system, part).state_dict()) for part in cf.PARTS}
    if variant == "no_jacobian_sn_kp":
        assert any(k.endswith("weight_orig") for k in ckpt["discriminator"])
        assert "jacobian.weight" not in ckpt["kp_detector"]
    else:
        assert ckpt["kp_detector"]["jacobian.weight"].shape[0] == 4  # single jacobian map
        assert "dense_motion_network.occlusion.weight" not in ckpt["generator"]
        assert "down.weight" not in ckpt["kp_detector"]  # scale 1: no anti-alias
    torch.save(ckpt, tmp_path / "00000001-checkpoint.pth.tar")
    g = torch.Generator().manual_seed(1)
    inputs = {"source": torch.rand(1, 3, 32, 32, generator=g).numpy(),
              "driving": torch.rand(1, 3, 32, 32, generator=g).numpy(),
              "driving_video": torch.rand(1, 3, 3, 32, 32, generator=g).numpy()}
    outs = cf.compute_parity_outputs(system, inputs, [str(s) for s in raw["model_params"]["discriminator_params"]["scales"]])
    if variant == "no_jacobian_sn_kp":
        assert "rec_kp_source_jacobian" not in outs and "anim_abs_kp_norm_jacobian" not in outs
        assert "rec_occlusion_map" in outs
    else:
        assert "disc_gen_prediction_map_0.5" in outs and "rec_occlusion_map" not in outs
        assert "rec_kp_source_input_down" not in outs
    np.savez(tmp_path / "cases.npz", **inputs, **outs)
    rc, out, _ = run_cli("parity", "fomm", tmp_path)
    assert rc == 0, out
    if variant == "no_jacobian_sn_kp":
        return
    # a corrupted expectation is detected and reported
    outs["rec_prediction"] = outs["rec_prediction"] + 1e-3
    np.savez(tmp_path / "cases.npz", **inputs, **outs)
    rc, out, _ = run_cli("parity", "fomm", tmp_path)
    assert rc == 1 and "rec_prediction" in out and out.strip().endswith("FAIL")
