"""Demo sections as plug-ins: one file per system under ``v2v/demo/sections/``.

``v2v demo`` runs FOMM and vid2vid itself (``v2v.demo.pipeline``) and then every module found
here (``pkgutil``, ordered by ``MODEL.order``). A section module defines::

    from v2v.demo.sections import DemoModel, SectionOutput

    MODEL = DemoModel(name="keyframe_puppets", system="keyframe", data="puppets",
                      summary="first + last frame -> the video in between", order=60)

    def make_data(root: str, ctx) -> None:      # only for a data kind the pipeline does not make
        ...

    def run(ctx, system, cfg, rows) -> SectionOutput:
        ...   # held-out evaluation against trivial baselines, videos, plots

- ``MODEL.name`` is the shipped checkpoint's stem: ``v2v/assets/demo/<name>.safetensors`` (the
  inference weights with the trainer's metadata, written by :func:`export_plugin_checkpoint`),
  ``<name>.yaml`` (= ``configs/demo/<name>.yaml``, its ``data.root`` pointing at
  ``demo_data/<data>``), ``<name>.metrics.jsonl`` (training log) and ``<name>.json`` (record).
- ``run`` gets the system loaded with :func:`v2v.load` (shipped or freshly trained with
  ``--train``), its experiment config and the training log rows, and returns the report
  sections plus the numbers for ``metrics.json``. ``ctx.quick`` means seconds, not minutes.
- ``data`` names the dataset kind: ``puppets`` and ``toycity`` are made by the pipeline; a new
  kind is made by the module's ``make_data(root, ctx)`` into ``ctx.out/data/<kind>`` with a
  ``train`` and a ``test`` split from ``ctx.sizes.train_seed`` / ``test_seed``.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass, field

__all__ = ["DemoContext", "DemoModel", "SectionOutput", "beats", "record_note", "section_modules"]


@dataclass(frozen=True)
class DemoModel:
    name: str          # shipped checkpoint stem, e.g. "keyframe_puppets"
    system: str        # registered system name
    data: str          # dataset kind the model is trained and evaluated on
    summary: str = ""  # one line for the landing section: what the system does
    order: int = 100   # position in the report (FOMM 10, vid2vid 20)


@dataclass
class DemoContext:
    out: str                 # the report folder
    data: dict               # kind -> dataset root (train/ and test/ splits)
    sizes: object            # v2v.demo.pipeline.DemoSizes
    quick: bool
    device: object
    progress: bool = True

    def rel(self, path: str) -> str:
        """``path`` relative to the report folder, with forward slashes (for the HTML)."""
        return os.path.relpath(path, self.out).replace(os.sep, "/")

    def video_dir(self, name: str) -> str:
        d = os.path.join(self.out, "videos", name)
        os.makedirs(d, exist_ok=True)
        return d


@dataclass
class SectionOutput:
    sections: list                                 # v2v.demo.report.Section, in page order
    table: list = field(default_factory=list)      # the leading table: rows {"method", metrics...}
    lead_metric: str = "psnr"                      # the metric the section leads with
    higher_is_better: bool = True
    videos: list = field(default_factory=list)     # [{"caption", "mp4", "gif"}] (relative paths)
    thumbnail: str | None = None                   # relative path of a GIF/PNG for the landing section
    extra: dict = field(default_factory=dict)      # anything else for metrics.json


def beats(table: list[dict], metric: str = "psnr", higher_is_better: bool = True) -> dict[str, bool]:
    """{baseline method: model beats it on ``metric``} with the model in row 0 and baselines named
    ``baseline...``.

    >>> beats([{"method": "model", "psnr": 20}, {"method": "baseline: copy", "psnr": 18}])
    {'baseline: copy': True}
    """
    model = table[0][metric]
    return {r["method"]: bool(model > r[metric] if higher_is_better else model < r[metric])
            for r in table[1:] if r["method"].startswith("baseline")}


def record_note(ctx: DemoContext, name: str, rows: list) -> str:
    """The "Model: ..." line of a section: freshly trained (``--train``) or the shipped record."""
    import json

    from v2v.demo.assets import asset_files

    if os.path.isdir(os.path.join(ctx.out, "train", name)):
        steps = max((r["step"] for r in rows), default=0)
        return f"Model: trained now into train/{name} ({steps} steps); config configs/demo/{name}.yaml."
    rec_path = asset_files(name)["record"]
    if not rec_path.is_file():
        return f"Model: shipped checkpoint v2v/assets/demo/{name}.safetensors."
    r = json.loads(rec_path.read_text(encoding="utf-8"))
    return (f"Model: shipped checkpoint v2v/assets/demo/{name}.safetensors ({r.get('parameters', '?')} "
            f"parameters, {r.get('weights_bytes', 0) / 1e6:.2f} MB); {r.get('step', '?')} training steps in "
            f"{r.get('train_wall_time_s', 0) / 60:.1f} min on {r.get('machine', '?')} ({r.get('date', '')}; "
            f"{r.get('notes', '')}); config {r.get('config')}; command `{r.get('command', '')}`.")


def section_modules() -> list:
    """The section plug-in modules, ordered by ``MODEL.order``."""
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            m = importlib.import_module(f"{__name__}.{info.name}")
            if hasattr(m, "MODEL") and hasattr(m, "run"):
                mods.append(m)
    return sorted(mods, key=lambda m: (m.MODEL.order, m.MODEL.name))
