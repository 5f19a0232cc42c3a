"""The landing section of the demo report: one line and a thumbnail per system, and the parity table."""
from __future__ import annotations

import html

from v2v.demo.report import Section

__all__ = ["BUILTIN", "PARITY", "landing_section"]

#: the two sections the pipeline runs itself: name -> (system, one line)
BUILTIN = {
    "fomm_puppets": ("FOMM", ("animate a still image with the motion of a driving video (keypoints + local affine "
                             "motion, occlusion-aware generator)")),
    "vid2vid_toycity": ("vid2vid", ("turn a video of semantic label maps into footage (flow-warped sequential "
                                   "generation with occlusion masks)")),
}

#: system -> (paper, official-checkpoint parity status as documented in the README)
PARITY = {
    "FOMM": ("Siarohin et al. 2019", "official .pth.tar + YAML load directly; 60/60 fixture arrays"),
    "vid2vid": ("Wang et al. 2018", ("released G0..G2 + single-G folders load; 237/237 (3-scale), 105/105, "
                                    "65/65 (cityscapes35) fixture arrays")),
    "Everybody Dance Now": ("Chan et al. 2019", "official G/Gface load; 134/134 fixture arrays"),
    "Img2Vid": ("Pan et al. 2019", "official seg2vid .pth.tar + opt.json load; 82/82 fixture arrays"),
    "Single-image prediction": ("Radner (StyleGAN2 DVD-GAN)", ("official netG/netDs/netDt + opt.txt load; "
                                                              "45/45 fixture arrays")),
    "MoCoGAN-HD": ("Tian et al. 2021", "official modelR + rosinality StyleGAN2 + PCA stats load; 61/61 fixture arrays"),
    "Keyframe interpolation": ("Penington, Teo & Wang", "no official code or checkpoints (the poster is the spec)"),
}


def landing_section(thumbnails: dict, plugins: dict) -> Section:
    """``thumbnails``: demo model name -> relative GIF/PNG path; ``plugins``: name -> DemoModel."""
    cards = []
    rows = [(name, *BUILTIN[name]) for name in BUILTIN]
    rows += [(name, m.system, m.summary) for name, m in plugins.items()]
    for name, system, line in rows:
        thumb = thumbnails.get(name)
        img = (f"<img src='{html.escape(thumb)}' width='160' alt='{html.escape(system)}'>" if thumb
               else "<div class='nothumb'>no video</div>")
        cards.append(f"<a class='card' href='#{html.escape(name)}'>{img}<div><b>{html.escape(system)}</b><br>"
                     f"{html.escape(line)}</div></a>")
    table = ["<table><tr><th>system</th><th>paper</th><th>official checkpoints: parity</th></tr>"]
    for system, (paper, status) in PARITY.items():
        table.append(f"<tr><td>{html.escape(system)}</td><td>{html.escape(paper)}</td>"
                     f"<td>{html.escape(status)}</td></tr>")
    table.append("</table>")
    css = ("<style>.cards{display:flex;flex-wrap:wrap;gap:12px}.card{display:flex;gap:8px;width:420px;"
           "border:1px solid #ddd;border-radius:6px;padding:6px;color:inherit;text-decoration:none}"
           ".nothumb{width:160px;height:90px;background:#eee}</style>")
    return Section(title="What v2v does",
                   description="Every system below was trained by v2v's own trainer on procedural data with exact "
                               "ground truth, and is compared with trivial baselines on held-out clips. Click a "
                               "card to jump to its section.",
                   html=css + "<div class='cards'>" + "".join(cards) + "</div>" + "".join(table),
                   anchor="top")
