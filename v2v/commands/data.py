"""`v2v data synth {toycity,puppets,windfield}`: write a synthetic dataset with exact ground truth."""
from __future__ import annotations

KINDS = ("toycity", "puppets", "windfield")


def register(cli) -> None:
    p = cli.group_command("data", "synth", help="generate a synthetic dataset (toycity or puppets)")
    p.add_argument("kind", choices=KINDS, help="toycity: street label-map videos; puppets: dancing figures; "
                   "windfield: clouds drifting in a wind shown by leaning grass (single-image video prediction)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--videos", type=int, default=4, help="number of videos (default 4)")
    p.add_argument("--frames", type=int, default=12, help="frames per video (default 12)")
    p.add_argument("--size", default=None, help="HxW (default: toycity 64x128, puppets 64x64)")
    p.add_argument("--split", default="train", choices=("train", "test"), help="split name (default train)")
    p.add_argument("--identity", type=int, default=None,
                   help="puppets only: use this identity for every video (default: video index mod --ids)")
    p.add_argument("--ids", type=int, default=4, help="puppets only: number of identities (default 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_synth)


def run_synth(args) -> int:
    from v2v.data.synthetic.common import parse_size
    from v2v.errors import V2VError

    size = parse_size(args.size or ("64x128" if args.kind == "toycity" else "64x64"))
    if args.videos < 1:
        raise V2VError(f"--videos must be >= 1 (got {args.videos})")
    if args.frames < 2:
        raise V2VError(f"--frames must be >= 2 (got {args.frames})")
    if args.kind == "windfield":
        from v2v.data.synthetic.windfield import generate_windfield

        out = generate_windfield(args.out, args.videos, args.frames, size, args.seed, args.split,
                                 progress=not args.quiet)
    elif args.kind == "toycity":
        from v2v.data.synthetic.toycity import generate_toycity

        out = generate_toycity(args.out, args.videos, args.frames, size, args.seed, args.split,
                               progress=not args.quiet)
    else:
        from v2v.data.synthetic.puppets import generate_puppets

        if args.ids < 1:
            raise V2VError(f"--ids must be >= 1 (got {args.ids})")
        out = generate_puppets(args.out, args.videos, args.frames, size, args.seed, args.split,
                               identity=args.identity, n_ids=args.ids, progress=not args.quiet)
    print(f"wrote {args.videos} {args.kind} videos x {args.frames} frames ({size[0]}x{size[1]}) to {out}")
    return 0
