"""`v2v serve`: a local Gradio app with one tab per job, built from the CLI's own verbs.

Every job verb (``animate``, ``dance``, ``generate <system>``) becomes a tab whose form is made
from the verb's argparse options: file options become uploads (plus a "path on this machine"
box), choices become drop-downs, flags check boxes, numbers number fields. Running a tab calls
the very handler the CLI calls, so the validation, the one-line errors, the output writing and
the kept audio are the CLI's; a tab appears for each system as soon as it registers a
``generate`` verb.

Local and private by default:

- binds 127.0.0.1 (``--host`` to change it), never opens a share tunnel;
- ``GRADIO_ANALYTICS_ENABLED=False`` and Hugging Face telemetry off, set before gradio is imported;
- an audit hook (:func:`install_network_guard`) refuses any outgoing connection or name lookup
  to a host other than this machine and logs it: the server cannot phone home.

Limits (a clear message in the page, never a crash): upload size (``--max-upload-mb``), video
length (``--max-frames``), one job at a time per tab (a queue; other users wait).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import ipaddress
import os
import shutil
import socket
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field

from v2v.errors import V2VError

__all__ = ["JOBS", "ServeOptions", "build_app", "install_network_guard", "job_specs", "serve"]

#: (verb path, tab title) in page order; further `generate <system>` verbs follow by name
JOBS = [
    (("animate",), "Animate (FOMM)"),
    (("generate", "vid2vid"), "Label maps → video (vid2vid)"),
    (("dance",), "Dance transfer"),
    (("generate", "img2vid"), "Img2Vid"),
    (("generate", "style-dvdgan"), "Single-image prediction"),
    (("generate", "mocogan-hd"), "MoCoGAN-HD"),
    (("generate", "keyframe"), "Keyframes"),
]
#: option names (dest) that are files or folders on disk
PATH_OPTIONS = {
    "source", "driving", "image", "labels", "instances", "first", "last", "first_frame", "first_frames",
    "checkpoint", "config", "first_frame_generator", "image_generator", "pca", "source_video",
    "target_stats", "video", "poses",
}
#: options the server sets itself
SKIP_OPTIONS = {"help", "out", "device", "verbose", "labels_out", "no_progress", "quiet"}
VIDEO_EXT = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".gif")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
#: what an uploaded file must be, per option (folders and typed paths are checked by the CLI)
UPLOAD_KINDS = {
    "source": IMAGE_EXT, "image": IMAGE_EXT, "first": IMAGE_EXT, "last": IMAGE_EXT, "first_frame": IMAGE_EXT,
    "driving": VIDEO_EXT, "source_video": VIDEO_EXT + (".zip",), "video": VIDEO_EXT,
    "labels": IMAGE_EXT + VIDEO_EXT + (".zip",), "target_stats": (".json",),
    "checkpoint": (".safetensors", ".pth", ".tar", ".pt", ".ckpt"), "config": (".yaml", ".yml", ".txt", ".json"),
}

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "", "0.0.0.0", "::", "ip6-localhost"}
_blocked: list[str] = []


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 7860
    checkpoint_dir: str | None = None
    max_upload_mb: int = 200
    max_frames: int = 3000
    device: str = "auto"
    extra_local_hosts: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------- network


def _is_local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES or host == socket.gethostname().lower():
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def install_network_guard(log=None) -> list[str]:
    """Refuse outgoing connections and name lookups to other hosts in this process (audit hook).

    Returns the list that collects the refused targets (``"host:port"``). Unix sockets and
    loopback addresses pass. The hook cannot be removed: call it only in a server process.
    """

    def hook(event, args):
        if event == "socket.connect":
            addr = args[1]
            if isinstance(addr, tuple) and addr and not _is_local(addr[0]):
                target = f"{addr[0]}:{addr[1] if len(addr) > 1 else ''}"
                _blocked.append(target)
                if log:
                    log(f"v2v serve: refused an outgoing connection to {target}")
                raise ConnectionRefusedError(f"v2v serve is local-only: refused connection to {target}")
        elif event == "socket.getaddrinfo":
            host = args[0]
            if not _is_local(host):
                target = f"{host}:{args[1]}"
                _blocked.append(target)
                if log:
                    log(f"v2v serve: refused a name lookup of {host}")
                raise socket.gaierror(socket.EAI_NONAME, f"v2v serve is local-only: no lookup of {host}")

    sys.addaudithook(hook)
    return _blocked


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# ----------------------------------------------------------------------------------- jobs


@dataclass
class Field:
    dest: str
    flag: str
    kind: str  # path | choice | flag | int | float | text
    help: str
    default: object = None
    choices: tuple = ()
    required: bool = False


@dataclass
class JobSpec:
    path: tuple
    title: str
    help: str
    fields: list


def _subparser(parser: argparse.ArgumentParser, path: tuple) -> argparse.ArgumentParser | None:
    p = parser
    for word in path:
        sub = next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            return None
        p = sub.choices[word]
    return p


def _fields(p: argparse.ArgumentParser) -> list[Field]:
    out = []
    for a in p._actions:
        if not a.option_strings or a.dest in SKIP_OPTIONS or a.help == argparse.SUPPRESS:
            continue
        if a.dest in ("seed",):
            continue
        flag = max(a.option_strings, key=len)
        if isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            kind = "flag"
        elif a.dest in PATH_OPTIONS:
            kind = "path"
        elif a.choices:
            kind = "choice"
        elif a.type is int:
            kind = "int"
        elif a.type is float:
            kind = "float"
        else:
            kind = "text"
        default = None if a.default is argparse.SUPPRESS else a.default
        out.append(Field(a.dest, flag, kind, (a.help or "").replace("%%", "%"), default,
                         tuple(a.choices or ()), bool(a.required)))
    return out


def job_specs() -> list[JobSpec]:
    """The job tabs available in this install, in page order."""
    from v2v.cli import build_parser

    parser = build_parser()
    known = list(JOBS)
    gen = _subparser(parser, ("generate",))
    if gen is not None:
        sub = next(a for a in gen._actions if isinstance(a, argparse._SubParsersAction))
        names = {a.dest: a for a in sub._choices_actions}
        for name in sorted(sub.choices):
            if ("generate", name) not in {j[0] for j in known} and name in names and "-pca" not in name:
                known.append((("generate", name), name))
    specs = []
    for path, title in known:
        p = _subparser(parser, path)
        if p is not None:
            specs.append(JobSpec(path, title, p.description or "", _fields(p)))
    return specs


def _shipped(system: str, checkpoint_dir: str | None) -> dict[str, str]:
    """Default checkpoint/config for a system: the shipped demo files, or --checkpoint-dir's."""
    from importlib import resources

    cands = []
    if checkpoint_dir:
        cands.append(checkpoint_dir)
    try:
        cands.append(str(resources.files("v2v") / "assets" / "demo"))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        pass
    key = system.replace("-", "_")
    for d in cands:
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith(".safetensors") and f.startswith(key):
                yaml = os.path.join(d, f[: -len(".safetensors")] + ".yaml")
                return {"checkpoint": os.path.join(d, f), **({"config": yaml} if os.path.isfile(yaml) else {})}
    return {}


def _system_of(path: tuple) -> str:
    return {"animate": "fomm", "dance": "dance"}.get(path[0], path[-1])


def _check_upload(paths: list[str], dest: str) -> None:
    allowed = UPLOAD_KINDS.get(dest)
    if not allowed or len(paths) > 1:
        return
    ext = os.path.splitext(paths[0])[1].lower()
    if ext not in allowed:
        raise V2VError(f"{os.path.basename(paths[0])}: unsupported upload type '{ext or '(none)'}' for "
                       f"--{dest.replace('_', '-')} (expected {', '.join(allowed)})")


def _materialize(files, text: str | None, work: str, dest: str) -> str | None:
    """An uploaded file, several files / a zip (-> a folder) or a typed path -> one path."""
    if files:
        files = files if isinstance(files, list) else [files]
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files]
        _check_upload(paths, dest)
        if len(paths) == 1 and not paths[0].lower().endswith(".zip"):
            return paths[0]
        folder = os.path.join(work, dest)
        os.makedirs(folder, exist_ok=True)
        for p in paths:
            if p.lower().endswith(".zip"):
                with zipfile.ZipFile(p) as z:
                    for m in z.infolist():
                        name = os.path.normpath(m.filename)
                        if m.is_dir() or name.startswith(("..", os.sep)) or os.path.isabs(name):
                            continue
                        target = os.path.join(folder, name)
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        with z.open(m) as src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst)
            else:
                shutil.copy(p, os.path.join(folder, os.path.basename(p)))
        return folder
    text = (text or "").strip()
    return os.path.expanduser(text) if text else None


def _check_video_length(path: str, limit: int) -> None:
    from v2v.data.video import open_video

    if not path.lower().endswith(VIDEO_EXT) or not os.path.isfile(path):
        return
    with open_video(path) as r:
        n = r.num_frames
        if n is None:
            n = 0
            for _ in r:
                n += 1
                if n > limit:
                    break
    if n > limit:
        raise V2VError(f"{os.path.basename(path)}: the video has {n} frames; this server accepts at most "
                       f"{limit} (v2v serve --max-frames)")


def run_job(spec: JobSpec, values: dict, opts: ServeOptions, work: str) -> list[str]:
    """Run one job as the CLI would; returns the output files. Raises V2VError on bad input."""
    from v2v.cli import build_parser

    argv = list(spec.path)
    shipped = _shipped(_system_of(spec.path), opts.checkpoint_dir)
    for f in spec.fields:
        v = values.get(f.dest)
        if f.kind == "path" and not (v and (v[0] or (v[1] or "").strip())) and f.dest in shipped:
            v = (None, shipped[f.dest])  # the shipped demo checkpoint (or --checkpoint-dir's)
        if f.kind == "flag":
            if v:
                argv.append(f.flag)
            continue
        if f.kind == "path":
            v = _materialize(v[0], v[1], work, f.dest) if v else None
            if v:
                _check_video_length(v, opts.max_frames)
        if v is None or v == "" or (f.kind in ("int", "float") and v == f.default):
            if f.required:
                raise V2VError(f"{f.flag} is required ({f.help})")
            continue
        if f.kind == "int":
            v = int(v)
        argv += [f.flag, str(v)]
    out_dir = os.path.join(work, "out")
    os.makedirs(out_dir, exist_ok=True)
    argv += ["--out", os.path.join(out_dir, "result.mp4"), "--device", opts.device]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except SystemExit:
        msg = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        raise V2VError(msg[-1].split(": error: ")[-1] if msg else "invalid options") from None
    args.func(args)
    files = []
    for root, _, names in os.walk(out_dir):
        files += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
    if not files:
        raise V2VError("the job wrote no output")
    return files


# ----------------------------------------------------------------------------------- the page


def build_app(opts: ServeOptions):
    """The Gradio Blocks app (not launched)."""
    import gradio as gr

    specs = job_specs()
    tmp_root = tempfile.mkdtemp(prefix="v2v-serve-")
    with gr.Blocks(title="v2v", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# v2v — video-to-video synthesis\nEvery job runs locally on this machine. "
                    f"Uploads up to {opts.max_upload_mb} MB, videos up to {opts.max_frames} frames; "
                    "one job at a time per tab (others wait in a queue).")
        for spec in specs:
            defaults = _shipped(_system_of(spec.path), opts.checkpoint_dir)
            with gr.Tab(spec.title, id=" ".join(spec.path)):
                gr.Markdown(f"**`v2v {' '.join(spec.path)}`** — {spec.help}")
                comps, layout = [], []
                with gr.Row():
                    with gr.Column():
                        for f in spec.fields:
                            label = f.flag.lstrip("-")
                            if f.kind == "path":
                                up = gr.File(label=f"{label} (upload; several files or a .zip make a folder)",
                                             file_count="multiple", elem_id=f"{spec.path[-1]}-{f.dest}-upload")
                                txt = gr.Textbox(label=f"{label}: or a path on this machine", info=f.help,
                                                 value=defaults.get(f.dest, ""),
                                                 elem_id=f"{spec.path[-1]}-{f.dest}-path")
                                comps += [up, txt]
                                layout.append((f, 2))
                                continue
                            if f.kind == "flag":
                                c = gr.Checkbox(label=label, info=f.help, value=bool(f.default))
                            elif f.kind == "choice":
                                c = gr.Dropdown(choices=[str(x) for x in f.choices], label=label, info=f.help,
                                                value=None if f.default is None else str(f.default))
                            elif f.kind in ("int", "float"):
                                c = gr.Number(label=label, info=f.help, value=f.default,
                                              precision=0 if f.kind == "int" else None)
                            else:
                                c = gr.Textbox(label=label, info=f.help,
                                               value="" if f.default is None else str(f.default))
                            comps.append(c)
                            layout.append((f, 1))
                        run = gr.Button("Run", variant="primary", elem_id=f"{spec.path[-1]}-run")
                    with gr.Column():
                        video = gr.Video(label="result", elem_id=f"{spec.path[-1]}-video")
                        files = gr.File(label="download", file_count="multiple", elem_id=f"{spec.path[-1]}-files")

                def handler(*vals, _spec=spec, _layout=layout, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio API
                    values, i = {}, 0
                    for f, n in _layout:
                        values[f.dest] = tuple(vals[i:i + n]) if n == 2 else vals[i]
                        i += n
                    work = tempfile.mkdtemp(dir=tmp_root)
                    try:
                        out = run_job(_spec, values, opts, work)
                    except V2VError as exc:
                        shutil.rmtree(work, ignore_errors=True)
                        raise gr.Error("error: " + " ".join(str(exc).splitlines())) from None
                    vids = [p for p in out if p.lower().endswith((".mp4", ".webm"))]
                    return (vids[0] if vids else None), out

                run.click(handler, comps, [video, files], concurrency_limit=1,
                          concurrency_id=" ".join(spec.path))
    app._v2v_tmp_root = tmp_root
    return app


def serve(opts: ServeOptions, block: bool = True):
    """Launch the app on ``opts.host:opts.port`` (127.0.0.1 by default), local-only."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if not 0 < opts.port < 65536:
        raise V2VError(f"--port must be in 1..65535, got {opts.port}")
    if not _port_free(opts.host, opts.port):
        raise V2VError(f"port {opts.port} on {opts.host} is already in use; pick another with --port")
    install_network_guard(log=lambda m: print(m, file=sys.stderr, flush=True))
    app = build_app(opts)
    app.queue(default_concurrency_limit=1)
    print(f"v2v serve: http://{opts.host}:{opts.port} (local only; Ctrl+C to stop)", flush=True)
    try:
        app.launch(server_name=opts.host, server_port=opts.port, share=False, inbrowser=False, quiet=True,
                   max_file_size=f"{opts.max_upload_mb}mb", prevent_thread_lock=not block,
                   footer_links=[], ssr_mode=False, mcp_server=False, enable_monitoring=False)
    finally:
        if block:
            shutil.rmtree(app._v2v_tmp_root, ignore_errors=True)
    return app
