"""One adversarial trainer for every system (see :mod:`v2v.models.base` for the System interface).

Per step::

    batch = next(data)                                  # this rank's slice of the global batch
    out = system.train_step(batch, step)                # {"G": loss, "D": loss, "G/l1": ..., ...}
    for group in system.optim_groups():                 # ordered, e.g. G then D
        out[group].backward(inputs=group_params)        # grads of this group's params only
        average over ranks -> (AMP unscale) -> clip -> optimizer step
    EMA update of system.generator_module()

A group whose key is absent from ``out`` is not stepped that step (e.g. a D updated every other
step). Learning rates are set before every step from the schedule (no scheduler object, so a
resumed run recomputes them exactly). Held-out evaluation, samples and checkpoints run at
their intervals and at the last step, with the training RNG states preserved around them.

Exact resume: weights, optimizer states, AMP scaler, EMA, python/numpy/torch(+CUDA) RNG states
of every rank and the data position (epoch, batch index, seed) are checkpointed; the data order
is a pure function of (seed, epoch, batch index) (:mod:`v2v.train.data`). On CPU with
``deterministic: true``, N steps + hard kill + resume for N more steps gives bit-identical
weights to 2N steps straight.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import random
import time

import numpy as np
import torch
from torch import nn

from v2v.config import save_yaml, to_dict
from v2v.errors import V2VError
from v2v.train import checkpoint as ckpt
from v2v.train.config import TrainConfig, check_groups, group_value, lr_factor, validate
from v2v.train.data import ResumableBatchSampler, make_eval_loader, make_train_loader
from v2v.train.distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_mean,
    average_gradients,
    barrier,
    broadcast_module,
    init_distributed,
    shutdown,
)
from v2v.train.logger import RunLogger

__all__ = ["Trainer", "get_rng_state", "run_experiment", "set_rng_state", "setup_determinism"]

log = logging.getLogger("v2v.train")

EXIT_HOOK_ENV = "V2V_TRAIN_EXIT_AFTER_STEP"  # test hook: os._exit right after this step's checkpoint


# ------------------------------------------------------------------------------------- RNG


def get_rng_state(device: torch.device | None = None) -> dict:
    """python/numpy/torch(+cuda) RNG states as tensors, lists and primitives (``weights_only``-safe)."""
    py = random.getstate()
    npst = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [
            npst[0],
            torch.from_numpy(npst[1].astype(np.int64)),
            int(npst[2]),
            int(npst[3]),
            float(npst[4]),
        ],
        "torch": torch.get_rng_state(),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((int(py[0]), tuple(int(v) for v in py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), int(n[2]), int(n[3]), float(n[4])))
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    if state.get("cuda") and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([c.to(torch.uint8).cpu() for c in cuda])


@contextlib.contextmanager
def preserved_rng(device: torch.device):
    """Run a block (sampling, evaluation) without disturbing the training RNG streams."""
    py, npst = random.getstate(), np.random.get_state()
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npst)


def setup_determinism(deterministic: bool) -> None:
    """``deterministic``: ``torch.use_deterministic_algorithms(True, warn_only=True)`` (ops without a
    deterministic kernel warn instead of failing), cudnn deterministic, no cudnn autotune.
    Otherwise cudnn autotune is enabled (fastest, not reproducible on GPU)."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        _set_deterministic(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        _set_deterministic(False)
        torch.backends.cudnn.benchmark = True


def _set_deterministic(mode: bool) -> None:
    # torch.use_deterministic_algorithms also imports torch._inductor.config (~4 s on a small CPU)
    # only to set its `deterministic` flag; skip that import when inductor is not loaded yet
    # (nothing compiled so far) and set the flag through the same C call.
    import sys

    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if "torch._inductor.config" in sys.modules or setter is None:
        torch.use_deterministic_algorithms(mode, warn_only=True)
    else:
        setter(mode, warn_only=True)


def _batch_items(batch) -> int:
    """The number of items in a collated batch: the leading size of its first tensor (1 if none)."""

    def first(x):
        if isinstance(x, torch.Tensor):
            return int(x.shape[0]) if x.dim() else 1
        vals = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else ()
        for v in vals:
            n = first(v)
            if n:
                return n
        return 0

    return first(batch) or 1


def _to_device(x, device: torch.device):
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: _to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_device(v, device) for v in x)
    return x


def _module_prefix(root: nn.Module, sub: nn.Module) -> str:
    for name, m in root.named_modules():
        if m is sub:
            return name + "." if name else ""
    raise V2VError(f"{type(root).__name__}.generator_module() must return a submodule of the system")


# ----------------------------------------------------------------------------------- trainer


class Trainer:
    """Trains ``system`` (a :class:`v2v.models.base.System`) with the settings of ``cfg``.

    Args:
        system: the system (moved to ``device``).
        cfg: :class:`TrainConfig`.
        out_dir: run folder (checkpoints/, samples/, tb/, metrics.jsonl, config.yaml).
        device: torch device.
        train_set: training dataset (items: dicts of tensors).
        test_set: optional held-out dataset for evaluation and samples.
        experiment: the full experiment config (saved in checkpoint metadata and config.yaml).
        system_name: registry name (stored in checkpoints, checked on resume).
        dist: :class:`DistInfo` (default: single process).
        progress: show a tqdm bar (rank 0).
    """

    def __init__(
        self,
        system: nn.Module,
        cfg: TrainConfig,
        out_dir: str,
        device: torch.device | str,
        train_set,
        test_set=None,
        experiment=None,
        system_name: str = "",
        dist: DistInfo | None = None,
        progress: bool = True,
    ):
        validate(cfg)
        self.cfg = cfg
        self.device = torch.device(device)
        self.dist = dist or DistInfo()
        self.out_dir = os.fspath(out_dir)
        self.ckpt_dir = os.path.join(self.out_dir, "checkpoints")
        self.system = system.to(self.device)
        self.train_set, self.test_set = train_set, test_set
        self.experiment = experiment
        self.system_name = system_name
        self.progress = progress
        self.step, self.epoch, self.batch_index = 0, 0, 0
        self.data_seed = cfg.seed
        if train_set is None or len(train_set) == 0:
            raise V2VError("the training dataset is empty")

        groups = system.optim_groups()
        if not groups:
            raise V2VError(f"{type(system).__name__}.optim_groups() returned no groups")
        check_groups(cfg, groups)
        self.groups = {g: [p for p in ps if p.requires_grad] for g, ps in groups.items()}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.base_lr: dict[str, float] = {}
        for g, ps in self.groups.items():
            lr = float(group_value(cfg.lr, g, "lr"))
            betas = tuple(float(b) for b in group_value(cfg.betas, g, "betas"))
            wd = float(group_value(cfg.weight_decay, g, "weight_decay"))
            self.optimizers[g] = torch.optim.Adam(ps, lr=lr, betas=betas, weight_decay=wd)
            self.base_lr[g] = lr

        self.amp = bool(cfg.amp and self.device.type == "cuda")
        if cfg.amp and not self.amp:
            log.warning("train.amp is CUDA-only; ignored on %s (training in float32)", self.device)
            self._amp_note = f"train.amp ignored on {self.device} (CUDA only)"
        else:
            self._amp_note = None
        self.amp_dtype = torch.bfloat16 if cfg.amp_dtype == "bfloat16" else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self._stop_signal = None
        self._resume_note = None
        self.summary = ""

        self.ema = None
        self.ema_prefix = ""
        if cfg.ema is not None:
            gen = system.generator_module()
            if gen is None:
                raise V2VError(
                    f"train.ema is set but {type(system).__name__}.generator_module() returns None"
                )
            self.ema_prefix = _module_prefix(system, gen)
            self.ema = copy.deepcopy(gen).eval().requires_grad_(False)
        broadcast_module(self.system, self.dist)
        if self.ema is not None:
            self._ema_copy()

    # ---------------------------------------------------------------- EMA
    def _gen(self) -> nn.Module:
        return self.system.generator_module()

    @torch.no_grad()
    def _ema_copy(self) -> None:
        self.ema.load_state_dict(self._gen().state_dict())

    @torch.no_grad()
    def _ema_update(self) -> None:
        if self.step < self.cfg.ema_start:
            self._ema_copy()
            return
        w = 1.0 - float(self.cfg.ema)
        for pe, p in zip(self.ema.parameters(), self._gen().parameters()):
            pe.lerp_(p.detach(), w)
        for be, b in zip(self.ema.buffers(), self._gen().buffers()):
            be.copy_(b)

    @contextlib.contextmanager
    def _ema_weights(self):
        """Temporarily put the EMA weights into the generator (no-op without EMA)."""
        if self.ema is None:
            yield
            return
        gen = self._gen()
        backup = {k: v.clone() for k, v in gen.state_dict().items()}
        gen.load_state_dict(self.ema.state_dict())
        try:
            yield
        finally:
            gen.load_state_dict(backup)

    # ---------------------------------------------------------- checkpoints
    def weights_state(self) -> dict[str, torch.Tensor]:
        sd = dict(self.system.state_dict())
        if self.ema is not None:
            for k, v in self.ema.state_dict().items():
                sd[ckpt.EMA_PREFIX + self.ema_prefix + k] = v
        return sd

    def save_checkpoint(self) -> tuple[str, str] | None:
        """Write the step's checkpoint (rank 0; all ranks must call: RNG states are gathered)."""
        rngs = all_gather_object(get_rng_state(self.device), self.dist)
        paths = None
        if self.dist.is_main:
            wpath, spath = ckpt.checkpoint_paths(self.ckpt_dir, self.step)
            meta = {"system": self.system_name, "step": str(self.step)}
            if self.experiment is not None:
                meta["config"] = json.dumps(to_dict(self.experiment))
            ckpt.save_weights(self.weights_state(), wpath, meta)
            state = {
                "system": self.system_name,
                "step": self.step,
                "epoch": self.epoch,
                "batch_index": self.batch_index,
                "data_seed": self.data_seed,
                "batch_size": self.cfg.batch_size,
                "world_size": self.dist.world_size,
                "weights": os.path.basename(wpath),
                "optimizers": {g: o.state_dict() for g, o in self.optimizers.items()},
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                "rng": rngs,
                "config": json.dumps(to_dict(self.experiment)) if self.experiment is not None else "",
            }
            ckpt.save_state(state, spath)
            ckpt.prune_checkpoints(self.ckpt_dir, self.cfg.keep_last)
            paths = (wpath, spath)
        barrier(self.dist)
        return paths

    def load_checkpoint(self, weights_path: str, state_path: str) -> None:
        """Restore weights, EMA, optimizers, scaler, RNG and data position from a checkpoint pair."""
        state = ckpt.load_state(state_path)
        if self.system_name and state.get("system") and state["system"] != self.system_name:
            raise V2VError(
                f"{state_path}: checkpoint of system '{state['system']}', this config trains "
                f"'{self.system_name}'"
            )
        tensors, _meta = ckpt.read_weights(weights_path)
        sd = {k: v for k, v in tensors.items() if not k.startswith(ckpt.EMA_PREFIX)}
        ckpt.check_state_dict(self.system.state_dict(), sd, weights_path, strict=True)
        with torch.no_grad():
            self.system.load_state_dict(sd, strict=True)
        if self.ema is not None:
            pre = ckpt.EMA_PREFIX + self.ema_prefix
            esd = {k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)}
            if esd:
                ckpt.check_state_dict(self.ema.state_dict(), esd, weights_path + " (EMA)", strict=True)
                self.ema.load_state_dict(esd)
            else:
                log.warning("%s has no EMA weights; EMA restarts from the current generator", weights_path)
                self._ema_copy()
        self._warn_config_changes(state.get("config") or "", state_path)
        opt_states = state.get("optimizers", {})
        if set(opt_states) != set(self.optimizers):
            raise V2VError(
                f"{state_path}: optimizer groups {sorted(opt_states)} do not match the system's "
                f"{sorted(self.optimizers)}"
            )
        for g, o in self.optimizers.items():
            try:
                o.load_state_dict(opt_states[g])
            except (ValueError, KeyError) as exc:
                raise V2VError(f"{state_path}: optimizer state of group '{g}' does not fit: {exc}") from None
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_index = int(state["batch_index"])
        self.data_seed = int(state.get("data_seed", self.cfg.seed))
        if int(state.get("batch_size", self.cfg.batch_size)) != self.cfg.batch_size:
            log.warning(
                "resuming with batch_size %d (checkpoint used %s): data order restarts at the next epoch",
                self.cfg.batch_size,
                state.get("batch_size"),
            )
            self.epoch, self.batch_index = self.epoch + 1, 0
        rngs = state.get("rng") or []
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:
            log.warning(
                "checkpoint has RNG states for %d processes, running %d: reseeding",
                len(rngs),
                self.dist.world_size,
            )
            from v2v.utils import seed_everything

            seed_everything(self.cfg.seed + 1_000_003 * self.dist.rank + self.step)
        log.info("resumed from %s at step %d", weights_path, self.step)

    def _warn_config_changes(self, saved_json: str, where: str) -> None:
        if not saved_json or self.experiment is None:
            return
        try:
            saved = json.loads(saved_json)
        except json.JSONDecodeError:
            return
        now = json.loads(json.dumps(to_dict(self.experiment)))

        def flat(d, pre=""):
            out = {}
            for k, v in d.items():
                if isinstance(v, dict) and v and all(isinstance(x, str) for x in v):
                    out.update(flat(v, f"{pre}{k}."))
                else:
                    out[f"{pre}{k}"] = v
            return out

        a, b = flat(saved), flat(now)
        ignore = {"train.steps", "train.out_dir"}
        changed = [k for k in sorted(set(a) | set(b)) if k not in ignore and a.get(k) != b.get(k)]
        if changed:
            shown = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in changed[:6])
            msg = f"resuming {where} with a changed config ({shown}{', ...' if len(changed) > 6 else ''})"
            log.warning(msg)
            self._resume_note = msg

    # ------------------------------------------------------------- helpers
    def _clip_value(self, group: str) -> float | None:
        """Max grad norm for ``group``: a number for all groups, or per group (missing = no clip)."""
        c = self.cfg.grad_clip
        if isinstance(c, dict):
            c = c.get(group, c.get("default"))
        return float(c) if c else None

    def _set_lrs(self) -> dict[str, float]:
        f = lr_factor(self.cfg, self.step)
        out = {}
        for g, o in self.optimizers.items():
            for pg in o.param_groups:
                pg["lr"] = self.base_lr[g] * f
            out[g] = self.base_lr[g] * f
        return out

    def _sample_batch(self):
        ds = self.test_set if self.test_set is not None else self.train_set
        n = min(8, len(ds), max(1, self.cfg.batch_size))
        loader = make_eval_loader(ds, n, self.data_seed, 0, 1, 1)
        return _to_device(next(iter(loader)), self.device)

    @torch.no_grad()
    def write_samples(self, logger: RunLogger) -> list[str]:
        if not self.dist.is_main:
            return []
        with preserved_rng(self.device), self._ema_weights():
            was = self.system.training
            self.system.eval()
            try:
                images = self.system.sample(self._sample_batch())
            finally:
                self.system.train(was)
        return logger.samples(self.step, images or {})

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean of ``system.evaluate`` over the first ``eval_batches`` global test batches.

        Runs on rank 0 alone, in per-rank-sized batches (what fits one device), over the same
        items for any process count; the other ranks wait at a barrier.
        """
        if self.test_set is None or not self.dist.is_main or self.cfg.eval_batches == 0:
            return {}
        per_rank = max(1, self.cfg.batch_size // self.dist.world_size)
        n_batches = self.cfg.eval_batches * self.dist.world_size
        loader = make_eval_loader(self.test_set, per_rank, self.data_seed, 0, 1, n_batches)
        sums: dict[str, float] = {}
        n = 0
        with preserved_rng(self.device), self._ema_weights():
            was = self.system.training
            self.system.eval()
            try:
                for batch in loader:
                    # per-batch means weighted by the batch's item count: a short last batch must
                    # not count as much as a full one (the mean is then the mean over items)
                    m = _batch_items(batch)
                    for k, v in (self.system.evaluate(_to_device(batch, self.device)) or {}).items():
                        sums[k] = sums.get(k, 0.0) + float(v) * m
                    n += m
            finally:
                self.system.train(was)
        return {f"eval/{k}": v / max(1, n) for k, v in sums.items()}

    def _due(self, every: int) -> bool:
        return self.step == self.cfg.steps or (every > 0 and self.step % every == 0)

    # ----------------------------------------------------------------- loop
    def fit(self) -> dict[str, float]:
        """Train until ``cfg.steps``; returns the last logged values."""
        cfg = self.cfg
        exit_after = int(os.environ.get(EXIT_HOOK_ENV, "0") or 0)
        logger = RunLogger(
            self.out_dir, cfg.steps, self.step, active=self.dist.is_main, progress=self.progress
        )
        for note in (self._amp_note, self._resume_note):
            if note:
                logger.info(note)
        if self.step >= cfg.steps:
            logger.info(f"already at step {self.step} >= train.steps {cfg.steps}; nothing to do")
            logger.close()
            return {}
        sampler = ResumableBatchSampler(
            len(self.train_set),
            cfg.batch_size,
            self.data_seed,
            self.dist.rank,
            self.dist.world_size,
            self.epoch,
            self.batch_index,
        )
        loader = make_train_loader(
            self.train_set,
            sampler,
            cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            seed=self.data_seed,
        )
        data = iter(loader)
        acc: dict[str, torch.Tensor] = {}
        count = 0
        last: dict[str, float] = {}
        t_last, s_last = time.perf_counter(), self.step
        autocast = torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.amp)
        self.system.train()
        restore_signals = self._install_signal_handlers()
        t_start, s_start = time.perf_counter(), self.step
        try:
            while self.step < cfg.steps:
                batch = _to_device(next(data), self.device)
                lrs = self._set_lrs()
                with autocast:
                    out = self.system.train_step(batch, self.step)
                if not isinstance(out, dict):
                    raise V2VError(f"{type(self.system).__name__}.train_step must return a dict of losses")
                if not any(g in out for g in self.groups):
                    raise V2VError(
                        f"{type(self.system).__name__}.train_step returned none of the optimizer "
                        f"groups {list(self.groups)} (keys: {list(out)})"
                    )
                stepped = [g for g in self.groups if g in out]
                for i, g in enumerate(stepped):
                    params, opt = self.groups[g], self.optimizers[g]
                    opt.zero_grad(set_to_none=True)
                    loss = out[g]
                    if loss.requires_grad:
                        self.scaler.scale(loss.float()).backward(
                            inputs=params, retain_graph=i < len(stepped) - 1
                        )
                    average_gradients(params, self.dist)
                    clip = self._clip_value(g)
                    if clip:
                        self.scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(params, float(clip))
                    self.scaler.step(opt)
                self.scaler.update()
                if self.ema is not None:
                    self._ema_update()
                for k, v in out.items():
                    if isinstance(v, torch.Tensor) and v.numel() == 1:
                        v = v.detach().float().reshape(())
                        acc[k] = acc[k] + v if k in acc else v
                count += 1
                del out, batch
                self.step += 1
                self.batch_index += 1
                if self.batch_index >= sampler.batches_per_epoch:
                    self.epoch, self.batch_index = self.epoch + 1, 0

                postfix = None
                if self._due(cfg.log_every) and count:
                    vals = all_reduce_mean({k: v / count for k, v in acc.items()}, self.dist)
                    last = {k: float(v) for k, v in vals.items()}
                    now = time.perf_counter()
                    row = dict(last)
                    row.update({f"lr/{g}": lr for g, lr in lrs.items()})
                    row["it_per_s"] = (self.step - s_last) / max(1e-9, now - t_last)
                    t_last, s_last = now, self.step
                    bad = [k for k, v in last.items() if not math.isfinite(v)]
                    if bad:
                        logger.info(f"step {self.step}: non-finite {', '.join(bad)}")
                    logger.scalars(self.step, row)
                    postfix = {k: v for k, v in last.items() if k in self.groups or "/" not in k}
                    acc, count = {}, 0
                logger.progress(1, postfix)
                if self.dist.is_main and self._due(cfg.sample_every):
                    self.write_samples(logger)
                if self._due(cfg.eval_every):
                    ev = self.evaluate()
                    if ev:
                        logger.scalars(self.step, ev)
                        logger.info(f"step {self.step}: " + ", ".join(f"{k}={v:.4g}" for k, v in ev.items()))
                    barrier(self.dist)
                stop = self._stop_requested()
                if self._due(cfg.ckpt_every) or stop:
                    paths = self.save_checkpoint()
                    if exit_after and self.step == exit_after:
                        logger.close()
                        os._exit(17)  # test hook: a hard exit, as if killed right after the checkpoint
                    if stop:
                        if self.dist.is_main:
                            log.warning(
                                "stopped by %s at step %d; checkpoint %s; continue with --resume",
                                self._stop_signal,
                                self.step,
                                paths[0] if paths else "?",
                            )
                        break
                self.system.train()
        finally:
            restore_signals()
            logger.close()
            del data
        dt = time.perf_counter() - t_start
        if self.dist.is_main and self.step > s_start:
            latest = ckpt.find_latest(self.ckpt_dir)
            self.summary = (
                f"trained steps {s_start + 1}-{self.step} in {dt:.1f} s "
                f"({(self.step - s_start) / max(dt, 1e-9):.2f} it/s); "
                f"latest checkpoint: {latest[0] if latest else 'none'}"
            )
        return last

    def _install_signal_handlers(self):
        """SIGTERM/SIGUSR1 (cluster preemption): finish the step, checkpoint, stop. Main thread only."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        sigs = [signal.SIGTERM] + ([signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else [])
        old = {}

        def handler(signum, frame):
            self._stop_signal = signal.Signals(signum).name

        for sg in sigs:
            try:
                old[sg] = signal.signal(sg, handler)
            except (ValueError, OSError):
                pass

        def restore():
            for sg, h in old.items():
                signal.signal(sg, h)

        return restore

    def _stop_requested(self) -> bool:
        flag = self._stop_signal is not None
        if not self.dist.enabled:
            return flag
        import torch.distributed as tdist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)  # every rank stops at the same step
        if t.item() > 0 and self._stop_signal is None:
            self._stop_signal = "peer"
        return bool(t.item() > 0)


def _try_build(system_cls, data_cfg, split: str, model_cfg):
    try:
        return system_cls.build_dataset(data_cfg, split, model_cfg)
    except NotImplementedError:
        return None


def run_experiment(
    system_cls,
    cfg,
    out_dir: str | None = None,
    device="auto",
    resume: str | None = None,
    system_name: str | None = None,
    progress: bool = True,
) -> Trainer:
    """Build everything from an experiment config and train. Works single-process and under torchrun.

    ``cfg`` is an instance of :func:`v2v.train.config.make_experiment_config` ``(system_cls)``;
    ``resume``: None (fresh run), ``"latest"`` (newest checkpoint in ``out_dir``, or fresh when
    there is none) or a checkpoint path / directory.
    """
    from v2v.device import resolve_device
    from v2v.utils import seed_everything

    tc: TrainConfig = cfg.train
    out_dir = os.fspath(out_dir or tc.out_dir)
    tc.out_dir = out_dir
    if resume is None:
        existing = ckpt.list_checkpoints(os.path.join(out_dir, "checkpoints"))
        if existing:
            raise V2VError(
                f"{out_dir} already holds checkpoints up to step {existing[-1]}: continue it with "
                f"--resume, or train into another --out (or delete the folder)"
            )
    info, device = init_distributed(resolve_device(device))
    flags = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    try:
        setup_determinism(tc.deterministic)
        seed_everything(tc.seed)  # identical initial weights on every rank
        system = system_cls.from_config(cfg.model)
        train_set = system_cls.build_dataset(cfg.data, "train", cfg.model)
        test_set = _try_build(system_cls, cfg.data, "test", cfg.model)
        seed_everything(tc.seed + 1_000_003 * info.rank)  # per-rank noise streams
        trainer = Trainer(
            system,
            tc,
            out_dir,
            device,
            train_set,
            test_set,
            experiment=cfg,
            system_name=system_name or cfg.system,
            dist=info,
            progress=progress,
        )
        if resume is not None:
            paths = ckpt.resolve_resume(resume, out_dir)
            if paths is None:
                log.warning("--resume: no checkpoint in %s yet; starting from step 0", out_dir)
            else:
                trainer.load_checkpoint(*paths)
        if info.is_main:
            os.makedirs(out_dir, exist_ok=True)
            save_yaml(to_dict(cfg), os.path.join(out_dir, "config.yaml"))
        trainer.fit()
        return trainer
    finally:
        shutdown(info)
        # leave the process as we found it (matters when called from Python, not from the CLI)
        _set_deterministic_flags(flags)


def _set_deterministic_flags(flags) -> None:
    import sys

    det, warn_only, cudnn_det, cudnn_bench = flags
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if "torch._inductor.config" in sys.modules or setter is None:
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
    else:
        setter(det, warn_only=warn_only)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_det, cudnn_bench
