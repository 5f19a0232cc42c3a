"""End-to-end `v2v train` on the toy system: outputs, exact resume after a hard kill, DDP equivalence.

Subprocess runs use `python -m v2v train` with the toy config; the single-process reference
run happens once in-process (module fixture) and is shared by several tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "toy" / "squares.yaml"
BASE = [
    "train.sample_every=2",
    "train.eval_every=2",
    "train.log_every=1",
    "train.ckpt_every=2",
    "train.keep_last=0",
    "train.eval_batches=1",
]


def _env():
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")  # tiny nets: 1 thread is fastest
    env.pop("V2V_TRAIN_EXIT_AFTER_STEP", None)
    return env


def _v2v(args, env=None, check=True, timeout=240):
    r = subprocess.run(
        [sys.executable, "-m", "v2v", *map(str, args)],
        check=False,
        cwd=REPO,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and r.returncode != 0:
        raise AssertionError(f"v2v {args} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    """4 steps of toy training in-process (reference for DDP; checked for its outputs)."""
    from v2v.cli import main

    out = tmp_path_factory.mktemp("single")
    state = torch.get_rng_state()
    try:
        rc = main(
            [
                "train",
                "--config",
                str(CONFIG),
                "--out",
                str(out),
                "--no-progress",
                "--device",
                "cpu",
                "--steps",
                "4",
                *BASE,
            ]
        )
    finally:
        torch.set_rng_state(state)
    assert rc == 0
    assert not torch.are_deterministic_algorithms_enabled()  # run_experiment restored the global flags
    return out


def test_end_to_end_outputs(single_run):
    out = single_run
    ck = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ck == [
        "step_00000002.safetensors",
        "step_00000002.state.pt",
        "step_00000004.safetensors",
        "step_00000004.state.pt",
    ]
    assert list((out / "tb").glob("events.out.tfevents.*"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "G" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    for r in train_rows:
        for k in ("G", "D", "G/adv", "G/l1", "D/real", "D/fake", "lr/G", "lr/D"):
            assert k in r and r[k] == r[k]  # present and not NaN
        # the G loss is adv + lambda_l1 * l1 (lambda 10 in the toy config)
        assert r["G"] == pytest.approx(r["G/adv"] + 10.0 * r["G/l1"], rel=1e-5)
        assert r["D"] == pytest.approx(0.5 * (r["D/real"] + r["D/fake"]), rel=1e-5)
    assert train_rows[0]["lr/G"] == pytest.approx(2e-3)
    eval_rows = [r for r in rows if "eval/l1" in r]
    assert [r["step"] for r in eval_rows] == [2, 4]
    assert 0 < eval_rows[-1]["eval/l1"] < 1
    # sample grid: 4 toy images of 16x16 in one row, padding 1 -> 3 x 18 x 69
    from imageio.v3 import imread

    def read_image(path):
        return torch.from_numpy(imread(path)).permute(2, 0, 1)

    png = out / "samples" / "step_00000004_fake.png"
    img = read_image(str(png))
    assert tuple(img.shape) == (3, 18, 69)
    real = read_image(str(out / "samples" / "step_00000004_real.png")).float()
    assert real.std() > 10  # the real squares grid is not blank
    # the weights changed from step 2 to 4, and EMA weights are stored under "ema."
    a = load_file(out / "checkpoints" / "step_00000002.safetensors")
    b = load_file(out / "checkpoints" / "step_00000004.safetensors")
    assert any(k.startswith("ema.generator.") for k in b)
    assert max((a[k] - b[k]).abs().max().item() for k in a) > 1e-4
    # EMA (decay 0.99): ema_4 is closer to ema_2 than the raw weights moved
    k = "generator.conv1.weight"
    assert (b["ema." + k] - a["ema." + k]).abs().max() < (b[k] - a[k]).abs().max()
    cfg = (out / "config.yaml").read_text()
    assert "system: toy" in cfg and "steps: 4" in cfg


def test_load_system_from_training_checkpoint(single_run):
    from v2v.train.checkpoint import load_system

    path = single_run / "checkpoints" / "step_00000004.safetensors"
    sd = load_file(path)
    system, cfg = load_system(path)
    assert cfg.system == "toy" and cfg.train.steps == 4 and not system.training
    assert torch.equal(system.generator.conv1.weight, sd["generator.conv1.weight"])
    system_ema, _ = load_system(path, ema=True)
    assert torch.equal(system_ema.generator.conv1.weight, sd["ema.generator.conv1.weight"])
    assert not torch.equal(sd["ema.generator.conv1.weight"], sd["generator.conv1.weight"])


def test_state_file_loads_weights_only(single_run):
    st = torch.load(
        single_run / "checkpoints" / "step_00000004.state.pt", map_location="cpu", weights_only=True
    )
    assert st["format"] == "v2v-trainer-state-1"
    assert st["step"] == 4 and st["system"] == "toy"
    # 64 items / batch 4 = 16 batches per epoch: after 4 steps, epoch 0, batch 4
    assert (st["epoch"], st["batch_index"]) == (0, 4)
    assert set(st["optimizers"]) == {"G", "D"}
    assert int(st["optimizers"]["G"]["state"][0]["step"]) == 4
    assert isinstance(st["rng"][0]["torch"], torch.Tensor) and len(st["rng"][0]["python"][1]) == 625


def test_exact_resume_after_hard_exit(tmp_path):
    """8 steps straight == 4 steps + os._exit + resume to 8, bitwise (dropout and augmentation on)."""
    args = [
        "train",
        "--config",
        CONFIG,
        "--no-progress",
        "--device",
        "cpu",
        "--steps",
        "8",
        "model.dropout=0.3",
        "data.augment=true",
        "train.ckpt_every=4",
        "train.keep_last=0",
        "train.log_every=2",
        "train.sample_every=0",
        "train.eval_every=0",
        "train.deterministic=true",
    ]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _v2v([*args, "--out", straight])
    env = _env()
    env["V2V_TRAIN_EXIT_AFTER_STEP"] = "4"
    r = _v2v([*args, "--out", killed], env=env, check=False)
    assert r.returncode == 17, r.stderr[-2000:]  # the hard exit of the test hook, not a clean return
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == [
        "step_00000004.safetensors",
        "step_00000004.state.pt",
    ]
    _v2v([*args, "--out", killed, "--resume"])
    a = load_file(straight / "checkpoints" / "step_00000008.safetensors")
    b = load_file(killed / "checkpoints" / "step_00000008.safetensors")
    assert sorted(a) == sorted(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    mid = load_file(straight / "checkpoints" / "step_00000004.safetensors")
    assert max((a[k] - mid[k]).abs().max().item() for k in a) > 1e-4  # steps 5-8 did train
    rows = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "G" in r] == [2, 4, 6, 8]  # the log continued, no duplicates
    ref = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["G"] for r in rows if "G" in r] == [r["G"] for r in ref if "G" in r]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_single(tmp_path, single_run):
    """torchrun with 2 gloo ranks (2 items each) == 1 process on the global batch of 4."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "--monitor-interval=0.2",
        "-m",
        "v2v",
        "train",
        "--config",
        str(CONFIG),
        "--out",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
        "--steps",
        "4",
        *BASE,
    ]
    env = _env()
    env["OMP_NUM_THREADS"] = "1"
    r = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    a = load_file(single_run / "checkpoints" / "step_00000004.safetensors")
    b = load_file(out / "checkpoints" / "step_00000004.safetensors")
    assert sorted(a) == sorted(b)
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=0)
    # logged losses are averaged over ranks = the single-process batch mean
    ra = [json.loads(x) for x in (single_run / "metrics.jsonl").read_text().splitlines() if '"G"' in x]
    rb = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"G"' in x]
    assert [r["G"] for r in rb] == pytest.approx([r["G"] for r in ra], rel=1e-4)
    # only rank 0 wrote: one events file, one set of samples
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1


@pytest.mark.slow
def test_ddp_exact_resume_after_hard_exit(tmp_path):
    """2 gloo ranks with dropout (per-rank RNG streams): 8 straight == 4 + hard exit + resume 4."""
    args = ["train", "--config", str(CONFIG), "--no-progress", "--device", "cpu", "--steps", "8",
            "model.dropout=0.3", "train.ckpt_every=4", "train.keep_last=0", "train.log_every=2",
            "train.sample_every=0", "train.eval_every=0"]  # fmt: skip

    def torchrun(out, extra=(), exit_after=None):
        env = _env()
        env["OMP_NUM_THREADS"] = "1"
        if exit_after:
            env["V2V_TRAIN_EXIT_AFTER_STEP"] = str(exit_after)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={_free_port()}", "--monitor-interval=0.2", "-m", "v2v", *args, "--out", str(out),
               *extra]  # fmt: skip
        return subprocess.run(
            cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )

    assert torchrun(tmp_path / "a").returncode == 0
    assert torchrun(tmp_path / "b", exit_after=4).returncode != 0  # both ranks os._exit(17)
    r = torchrun(tmp_path / "b", ["--resume"])
    assert r.returncode == 0, r.stderr[-3000:]
    a = load_file(tmp_path / "a" / "checkpoints" / "step_00000008.safetensors")
    b = load_file(tmp_path / "b" / "checkpoints" / "step_00000008.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k
