"""`v2v serve`: a local web app with one tab per job (Gradio, extra ``v2v[serve]``)."""
from __future__ import annotations


def register(cli):
    p = cli.command("serve", help="run the local web app: one tab per job (animate, vid2vid, dance, ...)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="folder of your own checkpoints (official or v2v); files named <system>*.safetensors "
                        "become each tab's default, and any path can be typed per tab")
    p.add_argument("--max-upload-mb", type=int, default=200, help="largest upload accepted (default 200 MB)")
    p.add_argument("--max-frames", type=int, default=3000, help="longest input video accepted (default 3000 frames)")
    p.set_defaults(func=run)


def run(args) -> int:
    from v2v.errors import V2VError

    try:
        import gradio  # noqa: F401
    except ImportError:
        raise V2VError("v2v serve needs Gradio: pip install 'v2v[serve]'") from None
    from v2v.serve.app import ServeOptions, serve

    if args.max_upload_mb < 1 or args.max_frames < 1:
        raise V2VError("--max-upload-mb and --max-frames must be >= 1")
    serve(ServeOptions(host=args.host, port=args.port, checkpoint_dir=args.checkpoint_dir,
                       max_upload_mb=args.max_upload_mb, max_frames=args.max_frames, device=args.device))
    return 0
