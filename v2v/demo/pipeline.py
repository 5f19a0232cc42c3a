"""`v2v demo`: synthetic data -> FOMM + vid2vid on held-out clips -> metrics vs baselines -> HTML.

Stages (each with its own progress bar):

1. data: ``DIR/data/puppets`` and ``DIR/data/toycity`` with ``v2v data synth``'s generators;
   training split seed 0, held-out test split seed 1 (different seeds *and* split names, so no
   test video shares its random stream with a training video);
2. models: the shipped checkpoints in ``v2v/assets/demo/`` or, with ``train=True``, fresh ones
   trained by the project's trainer with the same configs into ``DIR/train/<name>``;
3. FOMM on held-out puppets (:func:`v2v.demo.tasks.run_fomm_task`);
4. vid2vid on held-out toycity (:func:`v2v.demo.tasks.run_vid2vid_task`);
5. ``DIR/metrics.json`` (every number of the report) and ``DIR/index.html``.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["FULL", "QUICK", "DemoSizes", "run_demo"]


@dataclass
class DemoSizes:
    puppets_size: tuple = (64, 64)
    puppets_train: tuple = (16, 24)        # videos, frames
    puppets_test: tuple = (4, 24)
    toycity_size: tuple = (64, 128)
    toycity_train: tuple = (16, 12)
    toycity_test: tuple = (4, 12)
    train_seed: int = 0
    test_seed: int = 1
    puppet_ids: int = 4
    scale: int = 3                         # nearest upscaling of the side-by-side videos
    cross_identity: bool = True
    train_overrides: tuple = ()            # extra `v2v train` overrides (quick mode only)


#: what `v2v demo` runs (the data the shipped checkpoints were trained on)
FULL = DemoSizes()
#: `v2v demo --quick`: a smoke test (same resolution as the shipped models, far fewer frames)
QUICK = DemoSizes(puppets_train=(2, 4), puppets_test=(2, 6), toycity_train=(2, 4), toycity_test=(1, 5),
                  scale=2, train_overrides=("train.steps=2", "train.log_every=1", "train.eval_every=0",
                                            "train.sample_every=0", "train.ckpt_every=0"))


def _finite(v):
    """JSON-safe numbers: inf -> "inf" (PSNR of identical frames)."""
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def _make_data(root: str, s: DemoSizes, progress: bool) -> dict:
    from v2v.data.synthetic.puppets import generate_puppets
    from v2v.data.synthetic.toycity import generate_toycity

    pup, toy = os.path.join(root, "puppets"), os.path.join(root, "toycity")
    for d, kind in ((pup, "puppets"), (toy, "toycity")):
        # a previous demo run's data (maybe another size/frame count) would mix with the new files:
        # remove it, but only when its meta.json says v2v generated it
        meta = Path(d, "meta.json")
        if meta.is_file():
            try:
                ours = json.loads(meta.read_text()).get("dataset") == kind
            except ValueError:
                ours = False
            if not ours:
                from v2v.errors import V2VError

                raise V2VError(f"{d} exists and is not a v2v {kind} dataset: use another --out")
            import shutil

            shutil.rmtree(d)
    generate_puppets(pup, s.puppets_train[0], s.puppets_train[1], s.puppets_size, s.train_seed, "train",
                     n_ids=s.puppet_ids, progress=progress)
    generate_puppets(pup, s.puppets_test[0], s.puppets_test[1], s.puppets_size, s.test_seed, "test",
                     n_ids=s.puppet_ids, progress=progress)
    generate_toycity(toy, s.toycity_train[0], s.toycity_train[1], s.toycity_size, s.train_seed, "train",
                     progress=progress)
    generate_toycity(toy, s.toycity_test[0], s.toycity_test[1], s.toycity_size, s.test_seed, "test",
                     progress=progress)
    return {"puppets": pup, "toycity": toy}


def _train(name: str, data_root: str, out: str, s: DemoSizes, device, progress: bool,
           extra: tuple = ()) -> tuple[str, str, float]:
    """Train demo model ``name`` with its recorded config; returns (weights, config, seconds)."""
    from v2v.demo.assets import asset_files, latest_checkpoint
    from v2v.train.config import load_experiment
    from v2v.train.trainer import run_experiment

    config = str(asset_files(name)["config"])
    overrides = [f"data.root={data_root}", *s.train_overrides, *extra]
    system_cls, cfg = load_experiment(config, overrides)
    t0 = time.perf_counter()
    run_experiment(system_cls, cfg, out_dir=out, device=device, resume="latest", progress=progress)
    return str(latest_checkpoint(out)), config, time.perf_counter() - t0


def _loss_plots(rows: list[dict], system: str) -> list[str]:
    from v2v.demo.report import svg_line_plot

    if system == "fomm":
        train_key, eval_key, title = "G/rec_l1", "eval/rec_l1", "FOMM reconstruction L1"
        total_keys = ["G", "G/perceptual", "G/equivariance_value", "G/equivariance_jacobian"]
    else:
        train_key, eval_key, title = "G/l1", None, "vid2vid L1 of generated frames (0..1 scale)"
        total_keys = ["G", "D", "G/flow", "G/feat", "G/gan"]
    l1 = {f"train {train_key}": [(r["step"], r[train_key]) for r in rows if train_key in r]}
    evk = eval_key or next((k for r in rows for k in r if k.startswith("eval/") and "l1" in k), None)
    if evk:
        l1[f"held-out {evk}"] = [(r["step"], r[evk]) for r in rows if evk in r]
    losses = {k: [(r["step"], r[k]) for r in rows if k in r] for k in total_keys}
    return [svg_line_plot(l1, title, log_y=True),
            svg_line_plot({k: v for k, v in losses.items() if v}, f"{system} training losses", log_y=True)]


def run_demo(out: str, quick: bool = False, train: bool = False, device="cpu", progress: bool = True) -> dict:
    """Run the whole demo into folder ``out``; returns the metrics dict (also ``out/metrics.json``)."""
    import torch

    from v2v.data.synthetic.common import write_json
    from v2v.demo.assets import MODELS, asset_files, load_demo_model
    from v2v.demo.report import Section, write_report
    from v2v.demo.tasks import (
        class_mean_colors,
        read_jsonl,
        read_puppet_video,
        read_toycity_video,
        run_fomm_task,
        run_vid2vid_task,
    )
    from v2v.device import resolve_device

    dev = resolve_device(device)
    s = QUICK if quick else FULL
    os.makedirs(out, exist_ok=True)
    timings = {}
    t_start = time.perf_counter()

    # 1. data (puppets and toycity here; new kinds by the section plug-ins that need them)
    import v2v
    from v2v.demo.sections import DemoContext, section_modules
    from v2v.train.config import load_experiment

    t0 = time.perf_counter()
    roots = _make_data(os.path.join(out, "data"), s, progress)
    ctx = DemoContext(out, roots, s, quick, dev, progress)
    plugins = section_modules()
    for mod in plugins:
        kind = mod.MODEL.data
        if kind not in roots:
            roots[kind] = os.path.join(out, "data", kind)
            mod.make_data(roots[kind], ctx)
    timings["data"] = time.perf_counter() - t0

    # 2. models: the shipped checkpoints, or freshly trained ones (--train)
    models, records = {}, {}

    def model_files(name: str, kind: str, extra: tuple = ()):
        """(weights, config, training log) of demo model ``name``, training it first with --train."""
        files = asset_files(name)
        if train:
            weights, config, secs = _train(name, roots[kind], os.path.join(out, "train", name), s, dev, progress, extra)
            timings[f"train {name}"] = secs
            records[name] = {"source": f"trained now into train/{name}", "train_seconds": round(secs, 1)}
            return weights, config, os.path.join(out, "train", name, "metrics.jsonl")
        records[name] = {"source": f"shipped checkpoint v2v/assets/demo/{name}.safetensors"}
        if files["record"].is_file():
            records[name].update(json.loads(files["record"].read_text()))
        return files["weights"], files["config"], files["metrics"]

    def log_rows(path):
        return read_jsonl(path) if os.path.isfile(path) else []

    for name, (_, kind, _) in MODELS.items():
        weights, config, metrics_path = model_files(name, kind)
        t0 = time.perf_counter()
        sysm, cfg = load_demo_model(weights, config, dev)
        timings[f"load {name}"] = time.perf_counter() - t0
        models[name] = (sysm, cfg, log_rows(metrics_path))
    for mod in plugins:  # plug-in systems load through the public API
        name = mod.MODEL.name
        # a plug-in may add `v2v train` overrides for --quick --train (its config may not fit the tiny data)
        quick_extra = tuple(getattr(mod, "QUICK_TRAIN_OVERRIDES", ())) if quick else ()
        weights, config, metrics_path = model_files(name, mod.MODEL.data, quick_extra)
        t0 = time.perf_counter()
        if not os.path.isfile(weights):
            from v2v.errors import V2VError

            raise V2VError(f"demo checkpoint not found: {weights} (run `v2v demo --train` to retrain it)")
        models[name] = (v2v.load(weights, device=dev), load_experiment(str(config))[1], log_rows(metrics_path))
        timings[f"load {name}"] = time.perf_counter() - t0

    # 3. FOMM on held-out puppets
    t0 = time.perf_counter()
    pup_test = os.path.join(roots["puppets"], "test")
    pvids = [read_puppet_video(os.path.join(pup_test, d)) for d in sorted(os.listdir(pup_test))
             if os.path.isdir(os.path.join(pup_test, d))]
    fps_p = json.loads(Path(roots["puppets"], "meta.json").read_text()).get("fps", 15)
    fomm = run_fomm_task(models["fomm_puppets"][0], pvids, out, fps_p, progress, cross=s.cross_identity,
                         scale=s.scale)
    timings["fomm task"] = time.perf_counter() - t0

    # 4. vid2vid on held-out toycity
    t0 = time.perf_counter()
    meta = json.loads(Path(roots["toycity"], "meta.json").read_text())
    v2v_sys, v2v_cfg, _ = models["vid2vid_toycity"]
    colors = class_mean_colors(roots["toycity"], "train", v2v_cfg.model.label_nc)
    seqs = sorted(os.listdir(os.path.join(roots["toycity"], "test_A")))
    tvids = [read_toycity_video(roots["toycity"], "test", q) for q in seqs]
    vv = run_vid2vid_task(v2v_sys, tvids, colors, meta["colors"], out, meta.get("fps", 15), progress, scale=s.scale)
    timings["vid2vid task"] = time.perf_counter() - t0

    # 4b. every other system's section (v2v/demo/sections/)
    plugin_out = {}
    for mod in plugins:
        name = mod.MODEL.name
        t0 = time.perf_counter()
        plugin_out[name] = mod.run(ctx, *models[name])
        timings[f"{name} task"] = time.perf_counter() - t0

    # 5. report
    def rel(p):
        return os.path.relpath(p, out).replace(os.sep, "/")

    def beats(table):
        model = table[0]
        return {r["method"]: bool(model["psnr"] > r["psnr"]) for r in table[1:] if r["method"].startswith("baseline")}

    results = {
        "fomm_puppets": {"table": fomm["table"], "per_video": fomm["per_video"],
                         "frames_evaluated": fomm["frames_evaluated"], "beats_baselines_psnr": beats(fomm["table"])},
        "vid2vid_toycity": {"table": vv["table"], "per_video": vv["per_video"],
                            "frames_evaluated": vv["frames_evaluated"], "beats_baselines_psnr": beats(vv["table"])},
    }
    from v2v.demo.sections import beats as beats_on

    for name, po in plugin_out.items():
        results[name] = {"table": po.table, "lead_metric": po.lead_metric,
                         f"beats_baselines_{po.lead_metric}": beats_on(po.table, po.lead_metric, po.higher_is_better)
                         if po.table else {}, **po.extra}
    timings["total"] = time.perf_counter() - t_start
    metrics = {
        "mode": "quick" if quick else "full",
        "trained_now": bool(train),
        "device": str(dev),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}, "
                   f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "sizes": asdict(s),
        "data": {"puppets": rel(roots["puppets"]), "toycity": rel(roots["toycity"])},
        "models": records,
        "results": results,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "videos": {"fomm_puppets": [{"caption": c, "mp4": rel(m), "gif": rel(g)} for c, m, g in fomm["videos"]],
                   "vid2vid_toycity": [{"caption": c, "mp4": rel(m), "gif": rel(g)} for c, m, g in vv["videos"]],
                   **{name: po.videos for name, po in plugin_out.items()}},
    }
    write_json(os.path.join(out, "metrics.json"), _finite(metrics), indent=1)

    def model_note(name):
        r = records[name]
        bits = [r["source"]]
        if "step" in r:
            bits.append(f"{r['step']} training steps")
        if r.get("train_wall_time_s"):
            bits.append(f"trained in {r['train_wall_time_s'] / 60:.0f} min on {r.get('machine', '?')} ({r.get('date', '')})")
        if r.get("train_seconds"):
            bits.append(f"trained in {r['train_seconds'] / 60:.1f} min")
        bits.append(f"config {r.get('config', f'configs/demo/{name}.yaml')}")
        return "Model: " + "; ".join(bits) + "."

    def verdict(name):
        b = results[name]["beats_baselines_psnr"]
        won = [k for k, v in b.items() if v]
        lost = [k for k, v in b.items() if not v]
        txt = f"PSNR beats {len(won)}/{len(b)} baselines"
        return txt + (f"; does NOT beat: {', '.join(lost)}." if lost else ".")

    sz_p, sz_t = s.puppets_size, s.toycity_size
    sections = [
        Section(
            title="FOMM: animating held-out puppets (First Order Motion Model)",
            description=(f"Held-out synthetic puppets ({len(pvids)} videos x {s.puppets_test[1]} frames, "
                         f"{sz_p[0]}x{sz_p[1]}, seed {s.test_seed}; training data seed {s.train_seed}). Source image = "
                         f"frame 0 of a held-out video, driving video = that same video (self-reconstruction, so the "
                         f"driving video is the ground truth), relative motion transfer. Metrics on "
                         f"{fomm['frames_evaluated']}; warp error = mean |frame_t - warp(frame_t-1, ground-truth "
                         f"flowprev)| on non-occluded pixels over the whole clip."),
            videos=[(c, rel(m), rel(g)) for c, m, g in fomm["videos"] if not c.startswith("cross")],
            table=fomm["table"],
            notes=[verdict("fomm_puppets"), model_note("fomm_puppets")],
            plots=_loss_plots(models["fomm_puppets"][2], "fomm"),
            results_first=True,
            video_width=512,
        ),
        Section(
            title="vid2vid: label-map videos to footage (held-out toycity)",
            description=(f"Held-out synthetic toycity street clips ({len(tvids)} videos x {s.toycity_test[1]} frames, "
                         f"{sz_t[0]}x{sz_t[1]}, seed {s.test_seed}). Official test mode: the first "
                         f"{v2v_cfg.model.n_frames_G - 1} real frames are given, every later frame is generated from "
                         f"the label + instance maps and the previous outputs. Metrics on {vv['frames_evaluated']}. "
                         f"The class-mean baseline paints each label with its mean colour over the training split."),
            videos=[(c, rel(m), rel(g)) for c, m, g in vv["videos"]],
            table=vv["table"],
            notes=[verdict("vid2vid_toycity"), model_note("vid2vid_toycity")],
            plots=_loss_plots(models["vid2vid_toycity"][2], "vid2vid"),
            results_first=True,
            video_width=768,
        ),
    ]
    cross = [(c, rel(m), rel(g)) for c, m, g in fomm["videos"] if c.startswith("cross")]
    if cross:
        sections.insert(1, Section(
            title="FOMM: cross-identity motion transfer (for show)",
            description="The first frame of one held-out puppet animated by another held-out puppet's video "
                        "(relative motion). There is no ground truth for these, so no metrics.",
            videos=cross))
    sections[0].anchor, sections[-1].anchor = "fomm_puppets", "vid2vid_toycity"
    for name, po in plugin_out.items():
        if po.sections:
            po.sections[0].anchor = name
        sections.extend(po.sections)
    from v2v.demo.landing import landing_section

    thumbs = {"fomm_puppets": rel(fomm["videos"][0][2]) if fomm["videos"] else None,
              "vid2vid_toycity": rel(vv["videos"][0][2]) if vv["videos"] else None,
              **{name: po.thumbnail for name, po in plugin_out.items()}}
    sections.insert(0, landing_section(thumbs, {m.MODEL.name: m.MODEL for m in plugins}))
    tim = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    footer = (f"Generated by `v2v demo{' --quick' if quick else ''}{' --train' if train else ''}` on {metrics['date']} "
              f"({metrics['machine']}, device {dev}). Timings: {tim}. Every number is in metrics.json.")
    write_report(os.path.join(out, "index.html"), "v2v demo: video-to-video synthesis on synthetic data",
                 "Each system v2v offers, trained by v2v's own trainer on procedural data with exact ground "
                 "truth, compared with trivial baselines on held-out clips.",
                 sections, footer=footer)
    return metrics
