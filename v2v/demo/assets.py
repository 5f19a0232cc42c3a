"""The small demo checkpoints shipped in ``v2v/assets/demo/`` and how they are made.

Each model ``NAME`` (``fomm_puppets``, ``vid2vid_toycity``) has four files:

- ``NAME.safetensors``: the inference weights only (FOMM: ``kp_detector.*`` + ``generator.*``;
  vid2vid: ``netG.*``), float32, with the trainer's metadata (``system``, ``step``, ``config``;
  machine paths in the config are replaced by the documented relative ones);
- ``NAME.yaml``: the experiment config it was trained with (a copy of ``configs/demo/NAME.yaml``);
  also a valid ``--config`` for ``v2v animate`` / ``v2v generate vid2vid``;
- ``NAME.metrics.jsonl``: the training run's log (loss curves in the report);
- ``NAME.json``: the recorded command, wall time, machine, date and final held-out numbers.

:func:`export_checkpoint` makes them from a ``v2v train`` run folder.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

from v2v.errors import V2VError

__all__ = [
    "ASSET_DIR",
    "INFERENCE_PARTS",
    "MODELS",
    "asset_files",
    "export_checkpoint",
    "latest_checkpoint",
    "load_demo_model",
]

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"

#: name -> (system, dataset kind, data root used in the recorded config)
MODELS = {
    "fomm_puppets": ("fomm", "puppets", "demo_data/puppets"),
    "vid2vid_toycity": ("vid2vid", "toycity", "demo_data/toycity"),
}

#: submodules needed for inference (what the shipped files keep)
INFERENCE_PARTS = {"fomm": ("kp_detector", "generator"), "vid2vid": ("netG",)}


def plugin_models() -> dict:
    """name -> DemoModel of the section plug-ins (``v2v/demo/sections/``)."""
    from v2v.demo.sections import section_modules

    return {m.MODEL.name: m.MODEL for m in section_modules()}


def asset_files(name: str, folder: str | os.PathLike | None = None) -> dict[str, Path]:
    """Paths of the four files of demo model ``name`` in ``folder`` (default: the shipped ones)."""
    if name not in MODELS and name not in plugin_models():
        raise V2VError(f"unknown demo model '{name}' (known: {', '.join([*MODELS, *plugin_models()])})")
    d = Path(folder) if folder is not None else ASSET_DIR
    return {"weights": d / f"{name}.safetensors", "config": d / f"{name}.yaml",
            "metrics": d / f"{name}.metrics.jsonl", "record": d / f"{name}.json"}


def load_demo_model(weights: str | os.PathLike, config: str | os.PathLike, device="cpu"):
    """Build the system of experiment YAML ``config`` and load the inference parts from
    ``weights`` (a shipped file or a full ``v2v train`` checkpoint). Each inference part must
    match exactly (V2VError naming the file otherwise). Returns ``(system in eval mode, cfg)``."""
    from v2v.train.config import load_experiment
    from v2v.weights_io import load_weights

    if not os.path.isfile(weights):
        raise V2VError(f"demo checkpoint not found: {weights} (run `v2v demo --train` to retrain it)")
    system_cls, cfg = load_experiment(os.fspath(config))
    system = system_cls.from_config(cfg.model)
    for part in INFERENCE_PARTS[cfg.system]:
        load_weights(getattr(system, part), weights, prefix=part + ".", strict=True)
    return system.to(device).eval(), cfg


def latest_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The newest ``step_*.safetensors`` of a ``v2v train`` run folder."""
    from v2v.train.checkpoint import find_latest

    found = find_latest(os.path.join(run_dir, "checkpoints"))
    if found is None:
        raise V2VError(f"{run_dir}: no checkpoints/step_*.safetensors (did the training run finish?)")
    return Path(found[0])


def _sanitize_config(cfg: dict, name: str) -> dict:
    cfg = json.loads(json.dumps(cfg))
    cfg.setdefault("data", {})["root"] = MODELS[name][2] if name in MODELS else f"demo_data/{plugin_models()[name].data}"
    cfg.setdefault("train", {})["out_dir"] = f"runs/demo-{name.replace('_', '-')}"
    return cfg


def export_checkpoint(run_dir: str | os.PathLike, name: str, config_yaml: str | os.PathLike,
                      out_dir: str | os.PathLike | None = None, record: dict | None = None) -> dict[str, Path]:
    """Make the shipped files of ``name`` from a finished ``v2v train`` run (see module doc).

    ``record``: extra fields for ``NAME.json`` (command, wall time, ...); the machine, date,
    step, file sizes and the run's last held-out evaluation are added here."""
    import datetime

    from v2v.train.checkpoint import read_weights, save_weights

    files = asset_files(name, out_dir)
    files["weights"].parent.mkdir(parents=True, exist_ok=True)
    ckpt = latest_checkpoint(run_dir)
    tensors, meta = read_weights(ckpt)
    system = meta.get("system", MODELS[name][0] if name in MODELS else plugin_models()[name].system)
    if system in INFERENCE_PARTS:
        parts = INFERENCE_PARTS[system]
        keep = {k: v.float() for k, v in tensors.items() if k.split(".", 1)[0] in parts}
    else:  # plug-in systems: exactly what an inference-built system holds (no discriminators)
        import v2v

        keep = {k: v.float() if v.is_floating_point() else v for k, v in v2v.load(ckpt).state_dict().items()}
        parts = ("inference",)
    if not keep:
        raise V2VError(f"{ckpt}: no {'/'.join(parts)} weights")
    new_meta = {"system": system, "step": meta.get("step", ""), "demo_model": name}
    if "config" in meta:
        new_meta["config"] = json.dumps(_sanitize_config(json.loads(meta["config"]), name))
    save_weights(keep, files["weights"], new_meta)
    shutil.copyfile(config_yaml, files["config"])
    shutil.copyfile(os.path.join(run_dir, "metrics.jsonl"), files["metrics"])
    from v2v.demo.tasks import read_jsonl

    rows = read_jsonl(files["metrics"])
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    train_rows = [r for r in rows if "it_per_s" in r]
    rec = {
        "model": name,
        "system": system,
        "step": int(meta.get("step", 0) or 0),
        "parameters": int(sum(v.numel() for v in keep.values())),
        "weights_bytes": files["weights"].stat().st_size,
        "config": f"configs/demo/{name}.yaml",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores ({platform.processor() or 'cpu'}), "
                   f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "last_eval": evals[-1] if evals else None,
        "mean_it_per_s": (sum(r["it_per_s"] for r in train_rows) / len(train_rows)) if train_rows else None,
    }
    rec.update(record or {})
    from v2v.utils import atomic_write

    with atomic_write(files["record"], "w", encoding="utf-8") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
        f.write("\n")
    return files
