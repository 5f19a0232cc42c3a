"""Toy system: label map -> RGB with a two-conv generator and a tiny conditional patch discriminator.

It exists to test the trainer and as the smallest reference plug-in for the System interface
(see :mod:`v2v.models.base`). Data are procedural "colored squares": each item's label map
(integer ``H,W`` ids, 0 = background) holds 1-3 axis-aligned squares; the target image
(float32 ``3,H,W`` in [0,1]) paints each class with a fixed palette color plus a fixed
horizontal shading. Items are a pure function of (seed, split, index), built in memory.

Losses: LSGAN (targets 1 real / 0 fake; :class:`v2v.losses.gan.GANLoss`) + ``lambda_l1`` * L1 to
the target. Network constructors take the ``model:`` keys as keyword arguments (defaults only in
:class:`ToyModelConfig`); ``from_config(cfg, inference=True)`` builds the generator alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2v.losses.gan import GANLoss
from v2v.models.base import System, config_kwargs
from v2v.registry import register_system

__all__ = [
    "SquaresDataset",
    "ToyDataConfig",
    "ToyDiscriminator",
    "ToyGenerator",
    "ToyModelConfig",
    "ToySystem",
]


@dataclass
class ToyModelConfig:
    num_classes: int = 4
    width: int = 16  # generator hidden channels
    d_width: int = 16  # discriminator hidden channels
    dropout: float = 0.0  # Dropout2d in the generator (exercises RNG restore on resume)
    lambda_l1: float = 10.0


@dataclass
class ToyDataConfig:
    size: int = 16
    num_train: int = 64
    num_test: int = 8
    seed: int = 0
    augment: bool = False  # random horizontal flip (drawn from the global RNG, seeded per item)


def _palette(num_classes: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    pal = torch.rand(num_classes, 3, generator=g)
    pal[0] = 0.1
    return pal


class SquaresDataset(torch.utils.data.Dataset):
    """Deterministic colored squares. Item: ``{"label": long H,W, "image": float32 3,H,W in [0,1]}``."""

    def __init__(self, cfg: ToyDataConfig, split: str, num_classes: int):
        self.cfg, self.split, self.num_classes = cfg, split, num_classes
        self.n = cfg.num_train if split == "train" else cfg.num_test
        self.palette = _palette(num_classes)
        self.shade = torch.linspace(0.8, 1.0, cfg.size).view(1, 1, -1)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        s = self.cfg.size
        rng = np.random.default_rng([self.cfg.seed, 0 if self.split == "train" else 1, int(i)])
        label = np.zeros((s, s), dtype=np.int64)
        for _ in range(int(rng.integers(1, 4))):
            w = int(rng.integers(s // 4, s // 2 + 1))
            y, x = (int(v) for v in rng.integers(0, s - w + 1, size=2))
            label[y : y + w, x : x + w] = int(rng.integers(1, self.num_classes))
        label_t = torch.from_numpy(label)
        if self.cfg.augment and random.random() < 0.5:  # global RNG: seeded per item by the trainer
            label_t = label_t.flip(-1)
        image = self.palette[label_t].permute(2, 0, 1) * self.shade
        return {"label": label_t, "image": image.float().contiguous()}


class ToyGenerator(nn.Module):
    """One-hot label ``B,C,H,W`` -> image ``B,3,H,W`` in [0,1] (sigmoid output)."""

    def __init__(self, *, num_classes: int, width: int, dropout: float):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(num_classes, width, 3, padding=1)
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, label: torch.Tensor) -> torch.Tensor:
        """label: integer ``B,H,W`` ids -> image ``B,3,H,W`` in [0,1]."""
        x = F.one_hot(label.long(), self.num_classes).permute(0, 3, 1, 2).float()
        return torch.sigmoid(self.conv2(self.drop(F.leaky_relu(self.conv1(x), 0.2))))


class ToyDiscriminator(nn.Module):
    """(label ids ``B,H,W``, image ``B,3,H,W`` in [0,1]) -> patch scores ``B,1,H/2-1,W/2-1``."""

    def __init__(self, *, num_classes: int, d_width: int):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(num_classes + 3, d_width, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(d_width, 1, 3, padding=0)

    def forward(self, label: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = F.one_hot(label.long(), self.num_classes).permute(0, 3, 1, 2).float()
        h = torch.cat([x, image * 2 - 1], 1)
        return self.conv2(F.leaky_relu(self.conv1(h), 0.2))


@register_system("toy")
class ToySystem(System):
    """Toy conditional GAN (see the module docstring). Batch: ``{"label": B,H,W long, "image": B,3,H,W}``."""

    ModelConfig = ToyModelConfig
    DataConfig = ToyDataConfig

    def __init__(self, cfg: ToyModelConfig, inference: bool = False):
        super().__init__(cfg)
        self.generator = ToyGenerator(**config_kwargs(ToyGenerator, cfg))
        self.discriminator = None if inference else ToyDiscriminator(**config_kwargs(ToyDiscriminator, cfg))
        self.gan = GANLoss("lsgan")

    @classmethod
    def build_dataset(cls, data_cfg: ToyDataConfig, split: str, model_cfg: ToyModelConfig | None = None):
        ncls = (model_cfg or ToyModelConfig()).num_classes
        return SquaresDataset(data_cfg, split, ncls)

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"G": list(self.generator.parameters()), "D": list(self.discriminator.parameters())}

    def generator_module(self) -> nn.Module:
        return self.generator

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        label, real = batch["label"], batch["image"]
        fake = self.generator(label)
        g_adv = self.gan(self.discriminator(label, fake), True)
        g_l1 = (fake - real).abs().mean()
        d_real = self.gan(self.discriminator(label, real), True)
        d_fake = self.gan(self.discriminator(label, fake.detach()), False)
        return {
            "G": g_adv + self.cfg.lambda_l1 * g_l1,
            "D": 0.5 * (d_real + d_fake),
            "G/adv": g_adv.detach(),
            "G/l1": g_l1.detach(),
            "D/real": d_real.detach(),
            "D/fake": d_fake.detach(),
        }

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        label = batch["label"]
        pal = _palette(self.cfg.num_classes).to(label.device)
        return {
            "fake": self.generator(label),
            "real": batch["image"],
            "label": pal[label.long()].permute(0, 3, 1, 2),
        }

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        fake = self.generator(batch["label"])
        mse = ((fake - batch["image"]) ** 2).mean()
        return {
            "l1": float((fake - batch["image"]).abs().mean()),
            "psnr": float(-10 * torch.log10(mse.clamp_min(1e-10))),
        }
