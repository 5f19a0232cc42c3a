"""`v2v demo`: the end-to-end demo with an HTML report.

    v2v demo --out demo_out            # shipped checkpoints, ~1-2 min on a 2-core CPU
    v2v demo --out demo_out --train    # retrain both models from scratch first (configs/demo/*.yaml)
    v2v demo --out demo_quick --quick  # smoke test: a few frames, seconds

Writes ``OUT/index.html`` (side-by-side MP4 + GIF videos, metric tables against trivial
baselines, loss curves), ``OUT/metrics.json`` (every number of the report), ``OUT/videos/`` and
the generated datasets under ``OUT/data/``.
"""
from __future__ import annotations


def register(cli):
    p = cli.command("demo", help="end-to-end demo: synthetic data, FOMM + vid2vid on held-out clips, HTML report")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a few frames): finishes in seconds; for CI")
    p.add_argument("--train", action="store_true",
                   help="retrain both demo models from scratch with configs/demo/*.yaml into OUT/train/ and use "
                        "them instead of the shipped checkpoints (about an hour on a 2-core CPU; with --quick: "
                        "2 steps, a smoke test of the training path)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's default, all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    import os
    import time

    import torch

    from v2v.demo.pipeline import run_demo
    from v2v.errors import V2VError

    if args.threads is not None:
        if args.threads < 1:
            raise V2VError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise V2VError(f"--out {args.out}: exists and is not a folder")
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    m = run_demo(args.out, quick=args.quick, train=args.train, device=args.device, progress=not args.no_progress)
    for name, res in m["results"].items():
        print(f"{name} ({res.get('frames_evaluated', 'held-out clips')}):")
        for row in res["table"]:
            vals = "  ".join(f"{k} {v:.4f}" if isinstance(v, float) and abs(v) < 10 else f"{k} {v:.2f}"
                             for k, v in row.items() if k != "method")
            print(f"  {row['method']:<48s} {vals}")
    print(f"wrote {os.path.join(args.out, 'index.html')} and metrics.json in {time.perf_counter() - t0:.1f} s")
    return 0
