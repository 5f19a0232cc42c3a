"""The small interface through which the trainer (v2v.train) knows a system.

A system is an ``nn.Module`` holding all its networks (generator(s), discriminator(s)) plus:

- ``ModelConfig`` / ``DataConfig``: dataclasses for the YAML ``model:`` and ``data:`` sections.
- ``from_config(model_cfg) -> System`` (classmethod).
- ``build_dataset(data_cfg, split: str, model_cfg) -> torch.utils.data.Dataset`` (classmethod);
  items are dicts of tensors, collated by the default collate. Splits are ``"train"`` and
  ``"test"``; return ``None`` (or raise ``NotImplementedError``) for a split you do not have and
  the trainer skips held-out evaluation. Random augmentation must draw from the global RNGs
  (``random``, ``numpy.random``, ``torch``): the trainer seeds them before each item from
  (seed, epoch, position), so augmentation is reproducible, worker-count independent and
  resumes exactly. Do not keep a persistent ``np.random.default_rng`` in the dataset.
- ``optim_groups() -> dict[str, list[Parameter]]``: ordered, e.g. ``{"G": [...], "D": [...]}``.
  The trainer builds one optimizer per group (lr/betas from the train config, per-group
  overrides allowed) and steps them in this order.
- ``train_step(batch, step) -> dict[str, Tensor]``: one forward. Returns a loss tensor per
  optimizer group under the same key ("G", "D"), plus any scalar tensors to log under other
  names (e.g. "G/perceptual"). The trainer backprops the "G" loss into the G parameters only
  (``backward(inputs=...)``), steps G, then backprops "D" into the D parameters. So a system
  computes the D loss on detached fakes and G adversarial terms through D, in one call. The
  graph is retained between the group backwards, so both losses may share tensors that do not
  depend on G's parameters (e.g. D features of the real images). A group whose key is absent
  from the returned dict is not stepped that step (e.g. a D updated every other step).
- ``sample(batch) -> dict[str, Tensor]``: images ``B,3,H,W`` or videos ``B,T,3,H,W`` in [0,1] for
  sample grids / TensorBoard (called under no_grad, eval mode).
- ``evaluate(batch) -> dict[str, float]``: held-out metrics (no_grad, eval mode).
- ``generator_module() -> nn.Module`` (optional): the module to keep an EMA of (a submodule of
  the system). With ``train.ema`` set, samples and evaluation use the EMA weights, and
  checkpoints store them under ``"ema." + <system key>``.

Batches: ``train.batch_size`` is the *global* batch; under DDP each of K ranks gets
``batch_size / K`` items and gradients are averaged, so a loss that is a mean over the batch
gives the same update for any K. ``train_step`` runs in train mode and may use the torch RNG
(dropout, noise): its state is checkpointed. It must not call ``backward`` or step optimizers.

Weights I/O for inference: ``v2v.train.checkpoint.save_weights(module, path, metadata)`` and
``load_weights(module, path, strict=True, prefix="", ema=False)`` (safetensors).

Models must not import v2v.train, v2v.compat or v2v.cli.
"""
from __future__ import annotations

import torch
from torch import nn


class System(nn.Module):
    """Base class with defaults; see the module docstring for the contract."""

    ModelConfig = None
    DataConfig = None

    @classmethod
    def from_config(cls, model_cfg):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def build_dataset(cls, data_cfg, split: str, model_cfg=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        return {}

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        return {}

    def generator_module(self) -> nn.Module | None:
        return None
