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

Loading and inference (see ``docs/sections/adding_a_system.md``):

- ``from_config(model_cfg, inference=False)``: with ``inference=True`` no discriminator or other
  training-only network is built; the state dict is then the generator part only.
- ``self.cfg`` holds the model config; :meth:`System.save_pretrained` writes it with the weights,
  and ``v2v.load(dir)`` reads both back bit-exactly.
- Weights I/O: :mod:`v2v.weights_io` (safetensors), below every layer.
- Network constructors take keyword arguments named like the YAML keys, without defaults (the
  config dataclass holds them, once); :func:`config_kwargs` picks a constructor's arguments from
  a config.

Models must not import v2v.train, v2v.compat or v2v.cli.
"""
from __future__ import annotations

import inspect
import os

import torch
from torch import nn

__all__ = ["System", "config_kwargs"]


def config_kwargs(fn, cfg) -> dict:
    """The keyword arguments of ``fn`` (a class or function) taken from the same-named fields of
    ``cfg`` (a config dataclass): config is the signature.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Cfg:
    ...     width: int = 8
    ...     depth: int = 2
    ...     lr: float = 1e-3
    >>> def net(*, width, depth): return width * depth
    >>> net(**config_kwargs(net, Cfg()))
    16
    """
    params = inspect.signature(fn).parameters
    return {k: getattr(cfg, k) for k, p in params.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and hasattr(cfg, k)}


class System(nn.Module):
    """Base class with defaults; see the module docstring for the contract."""

    ModelConfig = None
    DataConfig = None
    system_name: str = ""  # set by @register_system

    def __init__(self, cfg=None):
        super().__init__()
        if cfg is not None:
            self.cfg = cfg

    @classmethod
    def from_config(cls, model_cfg, inference: bool = False):
        """Build the system from its model config; ``inference=True`` builds no training-only parts
        (discriminators). Override only to do more than call the constructor."""
        return cls(model_cfg, inference=inference)

    def save_pretrained(self, directory: str | os.PathLike) -> dict[str, str]:
        """Write ``<system>.safetensors`` (this module's state dict; metadata: system name and
        model config) and ``<system>.yaml`` (``system`` + ``model``) into ``directory``.

        ``v2v.load(directory)`` rebuilds the same system (inference-built when this one was)
        and loads the same tensors bit-exactly. Writes are atomic. Returns the two paths.
        """
        import json

        from v2v.config import save_yaml, to_dict
        from v2v.errors import V2VError
        from v2v.weights_io import save_weights

        name = type(self).system_name
        if not name or self.cfg is None:
            raise V2VError(f"{type(self).__name__}: save_pretrained needs a registered system with a model config "
                           f"(self.cfg)")
        directory = os.fspath(directory)
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise V2VError(f"save_pretrained: {directory} exists and is not a folder")
        os.makedirs(directory, exist_ok=True)
        model = to_dict(self.cfg)
        paths = {"weights": os.path.join(directory, f"{name}.safetensors"),
                 "config": os.path.join(directory, f"{name}.yaml")}
        save_weights(self, paths["weights"], metadata={"system": name, "model": json.dumps(model)})
        save_yaml({"system": name, "model": model}, paths["config"])
        return paths

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

    cfg = None  # the model config (a ModelConfig instance), set by `System.__init__(cfg)`
