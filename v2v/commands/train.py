"""`v2v train`: train any registered system from an experiment YAML.

v2v train --config configs/toy/squares.yaml [key=value ...] [--out DIR] [--resume [PATH]] [--steps N]
torchrun --nproc_per_node=2 -m v2v train --config ...      # data-parallel (gloo on CPU, nccl on CUDA)
"""

from __future__ import annotations


def register(cli):
    p = cli.command("train", help="train a system from an experiment YAML (system/model/data/train sections)")
    p.add_argument("--config", required=True, help="experiment YAML, e.g. configs/toy/squares.yaml")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted config overrides, e.g. train.lr=1e-4 model.width=32",
    )
    p.add_argument("--out", default=None, help="run folder (default: train.out_dir from the config)")
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="PATH",
        help="continue from the newest checkpoint in the run folder, or from PATH "
        "(a step_*.safetensors / .state.pt file or a run folder)",
    )
    p.add_argument("--steps", type=int, default=None, help="override train.steps")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=run, out_holds_inputs=True)  # the run folder holds --resume checkpoints and configs


def run(args) -> int:
    import os

    from v2v.train.config import load_experiment
    from v2v.train.trainer import run_experiment

    overrides = list(args.overrides or [])
    resume = args.resume
    if resume and "=" in resume and not os.path.exists(resume):
        # `--resume key=value ...`: argparse gave the first override to the optional PATH
        overrides.insert(0, resume)
        resume = "latest"
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.seed and not any(o.startswith("train.seed=") for o in overrides):
        overrides.append(f"train.seed={args.seed}")  # a non-zero global --seed overrides train.seed
    system_cls, cfg = load_experiment(args.config, overrides)
    trainer = run_experiment(
        system_cls, cfg, out_dir=args.out, device=args.device, resume=resume, progress=not args.no_progress
    )
    if trainer.summary:
        print(trainer.summary)
    return 0
