"""Self-contained HTML report for `v2v demo`: videos side by side, metric tables, loss curves.

The loss curves are inline SVG (no plotting dependency). Everything the page references is a
relative path inside the report folder, so the folder can be zipped and opened anywhere.
"""
from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field

from v2v.utils import atomic_write

__all__ = ["Section", "svg_line_plot", "write_report"]


@dataclass
class Section:
    """One task of the report.

    ``videos``: list of (caption, relative mp4 path, relative gif path or None).
    ``table``: rows of {"method": str, metric: float, ...}; the best value per metric is bolded
    (higher is better unless the metric name is in ``lower_is_better``).
    """

    title: str
    description: str = ""
    videos: list = field(default_factory=list)
    table: list = field(default_factory=list)
    lower_is_better: tuple = ("warp_error", "l1", "lpips")
    notes: list = field(default_factory=list)
    plots: list = field(default_factory=list)  # raw SVG strings
    results_first: bool = False  # table, notes and plots before the videos (long video lists)
    video_width: int = 384  # display width (px) of each video / GIF
    html: str = ""  # trusted raw HTML (made by v2v itself, e.g. the landing section's thumbnails)
    anchor: str = ""  # id of the <section> (links from the landing section)


def svg_line_plot(series: dict[str, list[tuple[float, float]]], title: str, width: int = 520,
                  height: int = 260, log_y: bool = False) -> str:
    """Inline SVG line plot. ``series``: name -> [(x, y), ...]."""
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    pts = [(x, y) for s in series.values() for x, y in s if y is not None and math.isfinite(y)]
    if log_y:
        pts = [(x, y) for x, y in pts if y > 0]
    if not pts:
        return f"<p><em>{html.escape(title)}: no data</em></p>"
    fy = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(fy(p[1]) for p in pts), max(fy(p[1]) for p in pts)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    ml, mr, mt, mb = 56, 12, 28, 36
    pw, ph = width - ml - mr, height - mt - mb

    def sx(x):
        return ml + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return mt + (1 - (fy(y) - y0) / (y1 - y0)) * ph

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">'),
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           (f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13" font-family="sans-serif">'
           f'{html.escape(title)}</text>'),
           f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#333"/>',
           f'<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{mt + ph}" stroke="#333"/>']
    for i in range(5):
        v = y0 + (y1 - y0) * i / 4
        label = f"{10 ** v:.3g}" if log_y else f"{v:.3g}"
        y = mt + (1 - i / 4) * ph
        out.append(f'<text x="{ml - 4}" y="{y + 4}" text-anchor="end" font-size="10" font-family="sans-serif">'
                   f'{label}</text>')
        out.append(f'<line x1="{ml}" y1="{y}" x2="{ml + pw}" y2="{y}" stroke="#eee"/>')
    for i in range(5):
        v = x0 + (x1 - x0) * i / 4
        x = ml + pw * i / 4
        out.append(f'<text x="{x}" y="{mt + ph + 14}" text-anchor="middle" font-size="10" '
                   f'font-family="sans-serif">{v:.0f}</text>')
    out.append(f'<text x="{ml + pw / 2}" y="{height - 4}" text-anchor="middle" font-size="11" '
               f'font-family="sans-serif">step</text>')
    for k, (name, s) in enumerate(series.items()):
        s = [(x, y) for x, y in s if y is not None and math.isfinite(y) and (y > 0 or not log_y)]
        if not s:
            continue
        c = colors[k % len(colors)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{path}"/>')
        out.append(f'<text x="{ml + pw - 4}" y="{mt + 12 + 13 * k}" text-anchor="end" font-size="11" '
                   f'font-family="sans-serif" fill="{c}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
    return html.escape(str(v))


def _table(rows: list[dict], lower_is_better) -> str:
    if not rows:
        return ""
    cols = [c for c in rows[0] if c != "method"]
    best = {}
    for c in cols:
        vals = [r[c] for r in rows if isinstance(r.get(c), (int, float)) and math.isfinite(r[c])]
        if vals:
            best[c] = min(vals) if c in lower_is_better else max(vals)
    head = "".join(f"<th>{html.escape(c)}{' ↓' if c in lower_is_better else ' ↑'}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            s = _fmt(v)
            if c in best and isinstance(v, (int, float)) and v == best[c]:
                s = f"<b>{s}</b>"
            cells.append(f"<td>{s}</td>")
        body.append(f"<tr><td>{html.escape(str(r['method']))}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>method</th>{head}</tr>{''.join(body)}</table>"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
section{border-top:1px solid #ddd;margin-top:2em;padding-top:1em}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left} .videos{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0} figcaption{font-size:.9em;color:#444} video,img.gif{image-rendering:pixelated;border:1px solid #ccc}
.note{color:#555;font-size:.92em}
"""


def _results(parts: list, s: Section) -> None:
    parts.append(_table(s.table, s.lower_is_better))
    for n in s.notes:
        parts.append(f"<p class='note'>{html.escape(n)}</p>")
    parts.extend(s.plots)


def write_report(path: str, title: str, subtitle: str, sections: list[Section], footer: str = "") -> str:
    """Write the HTML report atomically; returns ``path``."""
    parts = [(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body>"),
             f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>"]
    for s in sections:
        sid = f" id='{html.escape(s.anchor)}'" if s.anchor else ""
        parts.append(f"<section{sid}><h2>{html.escape(s.title)}</h2>")
        if s.description:
            parts.append(f"<p>{html.escape(s.description)}</p>")
        if s.html:
            parts.append(s.html)
        if s.results_first:
            _results(parts, s)
        if s.videos:
            parts.append("<div class='videos'>")
            for cap, mp4, gif in s.videos:
                parts.append("<figure>")
                if mp4:
                    parts.append(f"<video src='{html.escape(mp4)}' controls autoplay loop muted playsinline "
                                 f"width='{s.video_width}'></video>")
                if gif:
                    parts.append(f"<br><img class='gif' src='{html.escape(gif)}' width='{s.video_width}' alt='{html.escape(cap)}'>")
                links = " · ".join(f"<a href='{html.escape(p)}'>{os.path.splitext(p)[1][1:]}</a>" for p in (mp4, gif) if p)
                parts.append(f"<figcaption>{html.escape(cap)} ({links})</figcaption></figure>")
            parts.append("</div>")
        if not s.results_first:
            _results(parts, s)
        parts.append("</section>")
    if footer:
        parts.append(f"<section><p class='note'>{html.escape(footer)}</p></section>")
    parts.append("</body></html>")
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path
