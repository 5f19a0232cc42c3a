"""The ``train:`` section and the experiment config (``system`` + ``model`` + ``data`` + ``train``).

An experiment YAML::

    system: toy                 # a registered system name (v2v.registry)
    model: {...}                # System.ModelConfig fields
    data: {...}                 # System.DataConfig fields
    train:                      # TrainConfig fields (below)
      steps: 1000
      batch_size: 4             # GLOBAL batch; under DDP each of K ranks gets batch_size / K
      lr: {G: 2.0e-4, D: 2.0e-4}   # or one number for every group; "default" covers the rest
      betas: [0.5, 0.999]
      lr_schedule: linear       # constant | step (lr_milestones, lr_gamma) | linear (to 0 from lr_decay_start)

:func:`make_experiment_config` builds a dataclass whose ``model``/``data`` fields are typed with
the system's own config classes, so every unknown key anywhere is a V2VError naming the dotted
key and the closest valid one (``v2v.config``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from v2v.config import apply_overrides, from_dict, load_yaml, parse_override
from v2v.errors import V2VError

__all__ = ["TrainConfig", "group_value", "load_experiment", "lr_factor", "make_experiment_config"]

SCHEDULES = ("constant", "step", "linear")


@dataclass
class TrainConfig:
    """Trainer settings (the ``train:`` section). Steps count optimizer steps (global batches)."""

    steps: int = 1000
    batch_size: int = 4  # global batch size (split evenly over DDP ranks)
    num_workers: int = 0
    lr: float | dict[str, float] = 2e-4  # one value, or {group: lr, "default": lr}
    betas: tuple[float, float] | dict[str, tuple[float, float]] = (0.5, 0.999)
    weight_decay: float | dict[str, float] = 0.0
    lr_schedule: str = "constant"  # constant | step | linear
    lr_milestones: list[int] = field(default_factory=list)  # step schedule: multiply by lr_gamma at each
    lr_gamma: float = 0.1
    lr_decay_start: int | None = None  # linear schedule: constant until here, then linearly to 0 at `steps`
    grad_clip: float | dict[str, float] | None = None  # max grad norm: one value, or per group (absent = no clip)
    ema: float | None = None  # EMA decay of system.generator_module() (e.g. 0.999), null = off
    ema_start: int = 0  # EMA copies the weights until this step, then averages
    amp: bool = False  # mixed precision autocast on CUDA (ignored on CPU, with a log line)
    amp_dtype: str = "float16"  # float16 (with a GradScaler) | bfloat16 (no scaler needed)
    deterministic: bool = False  # torch.use_deterministic_algorithms + cudnn deterministic
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500  # 0 = never (a final sample is always written)
    eval_every: int = 1000  # 0 = never (a final evaluation runs when a test split exists)
    eval_batches: int = 4
    ckpt_every: int = 1000  # 0 = only the final checkpoint
    keep_last: int = 3  # keep the newest N checkpoints (0 = keep all)
    out_dir: str = "runs/experiment"


def group_value(value, group: str, what: str):
    """Resolve a scalar-or-per-group setting (``{"G": x, "default": y}``) for ``group``."""
    if isinstance(value, dict):
        if group in value:
            return value[group]
        if "default" in value:
            return value["default"]
        raise V2VError(
            f"config key 'train.{what}': no value for optimizer group '{group}' and no 'default' "
            f"(given: {', '.join(value)})"
        )
    return value


def check_groups(cfg: TrainConfig, groups) -> None:
    """Per-group dict keys must name real groups (or 'default')."""
    from v2v.errors import unknown_key_message

    valid = list(groups) + ["default"]
    for what in ("lr", "betas", "weight_decay", "grad_clip"):
        v = getattr(cfg, what)
        if isinstance(v, dict):
            for k in v:
                if k not in valid:
                    raise V2VError(unknown_key_message(f"optimizer group in train.{what}", k, valid))


def validate(cfg: TrainConfig) -> None:
    if cfg.steps < 1:
        raise V2VError(f"config key 'train.steps': expected >= 1, got {cfg.steps}")
    if cfg.batch_size < 1:
        raise V2VError(f"config key 'train.batch_size': expected >= 1, got {cfg.batch_size}")
    if cfg.lr_schedule not in SCHEDULES:
        from v2v.errors import unknown_key_message

        raise V2VError(unknown_key_message("train.lr_schedule", cfg.lr_schedule, SCHEDULES))
    if cfg.amp_dtype not in ("float16", "bfloat16"):
        from v2v.errors import unknown_key_message

        raise V2VError(unknown_key_message("train.amp_dtype", cfg.amp_dtype, ("float16", "bfloat16")))
    if cfg.ema is not None and not 0.0 <= cfg.ema < 1.0:
        raise V2VError(f"config key 'train.ema': expected a decay in [0, 1) or null, got {cfg.ema}")
    for k in (
        "log_every",
        "sample_every",
        "eval_every",
        "ckpt_every",
        "keep_last",
        "num_workers",
        "eval_batches",
    ):
        if getattr(cfg, k) < 0:
            raise V2VError(f"config key 'train.{k}': expected >= 0, got {getattr(cfg, k)}")


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Multiplier of the base lr for the update that produces step ``step + 1`` (0-based ``step``)."""
    if cfg.lr_schedule == "step":
        return cfg.lr_gamma ** sum(1 for m in cfg.lr_milestones if step >= m)
    if cfg.lr_schedule == "linear":
        start = cfg.steps // 2 if cfg.lr_decay_start is None else cfg.lr_decay_start
        if step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / max(1, cfg.steps - start))
    return 1.0


def make_experiment_config(system_cls):
    """A dataclass ``{system: str, model: ModelConfig, data: DataConfig, train: TrainConfig}`` for a system."""
    model_cls = system_cls.ModelConfig
    data_cls = system_cls.DataConfig
    if model_cls is None or data_cls is None:
        raise V2VError(f"{system_cls.__name__} does not define ModelConfig/DataConfig dataclasses")
    return dataclasses.make_dataclass(
        f"{system_cls.__name__}Experiment",
        [
            ("system", str, field(default="")),
            ("model", model_cls, field(default_factory=model_cls)),
            ("data", data_cls, field(default_factory=data_cls)),
            ("train", TrainConfig, field(default_factory=TrainConfig)),
        ],
    )


def load_experiment(path_or_dict, overrides=None):
    """YAML path (or mapping) + dotted overrides -> (system class, experiment config instance)."""
    from v2v.models import get_system_class

    raw = load_yaml(path_or_dict) if not isinstance(path_or_dict, dict) else dict(path_or_dict)
    name = raw.get("system")
    for text in overrides or ():
        parts, value = parse_override(text)
        if parts == ["system"]:
            name = value
    if not name:
        where = path_or_dict if not isinstance(path_or_dict, dict) else "config"
        raise V2VError(f"{where}: missing top-level key 'system' (e.g. system: toy)")
    system_cls = get_system_class(str(name))
    cls = make_experiment_config(system_cls)
    data = apply_overrides(raw, overrides, schema=cls)
    cfg = from_dict(cls, data)
    validate(cfg.train)
    return system_cls, cfg
