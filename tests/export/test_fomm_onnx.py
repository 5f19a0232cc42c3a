"""`v2v export fomm --format onnx` + `v2v animate --backend onnxruntime`, checked against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")  # optional extra (in the dev install, so CI runs this)


def test_onnx_export_matches_pytorch_on_the_fixture(shared, tmp_path, run_cli):
    from v2v.compat.fomm import load_fomm
    from v2v.data.video import read_video
    from v2v.export.fomm_onnx import OnnxFOMM
    from v2v.models.fomm import Animator

    fx = shared / "fixtures" / "fomm"
    ckpt, cfg = fx / "00000099-checkpoint.pth.tar", fx / "config.yaml"
    rc, out, err = run_cli("export", "fomm", "--format", "onnx", "--config", cfg, "--checkpoint", ckpt,
                           "--out", tmp_path / "onnx")
    assert rc == 0, err
    assert out.count("wrote") == 4
    system = load_fomm(ckpt, cfg)
    cases = np.load(fx / "cases.npz")
    src = torch.from_numpy(cases["source"])
    video = torch.from_numpy(cases["driving_video"])[0].permute(1, 0, 2, 3).contiguous()
    onnx = OnnxFOMM(tmp_path / "onnx")
    for mode, adapt, tag in (("relative", True, "rel_adapt"), ("absolute", False, "abs")):
        got = onnx.animator(src.numpy(), mode=mode, adapt_scale=adapt)(video).numpy()
        ref = Animator(system.kp_detector, system.generator, src, mode=mode, adapt_scale=adapt, exact=True)(video)
        assert np.abs(got - ref.numpy()).max() <= 1e-4
        assert np.abs(got - cases[f"anim_{tag}_prediction"][:, 0]).max() <= 1e-4
    kp = onnx(src)
    assert torch.allclose(kp["value"], system.kp_detector(src)["value"], atol=1e-5)

    # the CLI runs the exported graphs (torch-free model execution)
    from v2v.data.video import VideoWriter

    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, fps=25) as w:
        for f in (cases["driving_video"][0].transpose(1, 2, 3, 0) * 255).round().astype(np.uint8):
            w.write(f)
    rc, _, err = run_cli("animate", "--backend", "onnxruntime", "--config", cfg, "--checkpoint", tmp_path / "onnx",
                         "--source", shared / "data" / "animation" / "source" / "doll-06.png", "--driving", clip,
                         "--out", tmp_path / "o.mp4", "--device", "cpu")
    assert rc == 0, err
    frames, _ = read_video(tmp_path / "o.mp4")
    assert frames.shape == (4, 64, 64, 3) and frames.std() > 5
