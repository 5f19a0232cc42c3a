"""Reading official checkpoint files, shared by every system's compat module.

Official files are read with ``torch.load(map_location="cpu", weights_only=True)`` only: nothing
is unpickled beyond tensors and plain containers, legacy (torch 1.0, non-zip) and zip
serializations both work, and storages saved on ``cuda:0`` land on the CPU.
"""
from __future__ import annotations

import os
import re

import torch

from v2v.errors import V2VError

__all__ = ["OPTION_FILES", "official_state_dict", "parse_option_value", "read_options", "torch_load_official",
           "validate_options"]


def torch_load_official(path: str | os.PathLike, what: str = "checkpoint"):
    """Load an official file on CPU with ``weights_only=True``; V2VError when missing or unreadable."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise V2VError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for foreign files
        raise V2VError(checkpoint_error_message(path, exc)) from None


def checkpoint_error_message(path: str, exc: BaseException) -> str:
    """What is wrong with a file torch could not load with ``weights_only=True``, and what to do.

    Never repeats torch's own text (it advises re-running with ``weights_only=False``, i.e.
    executing the file's pickled code, and may carry the file's escape codes)."""
    text = str(exc)
    if "Weights only load failed" in text or "Unsupported global" in text or "weights_only" in text:
        return (f"{path}: not a plain weights file (it holds pickled Python objects beyond tensors); "
                "v2v never unpickles code: convert it to a plain state dict on a trusted machine "
                "(torch.save(model.state_dict(), ...)) and load that")
    if isinstance(exc, (EOFError, RuntimeError)) and ("zip" in text.lower() or "eof" in text.lower()
                                                      or "central directory" in text.lower()):
        return f"{path}: truncated or corrupt torch checkpoint (re-download or re-save it)"
    return (f"{path}: cannot read as a torch checkpoint ({type(exc).__name__}); "
            "expected a file written by torch.save holding a state dict of tensors")


def official_state_dict(path: str | os.PathLike, what: str = "checkpoint",
                        require_tensors: bool = True) -> dict:
    """An official ``save_network``-style state dict: unwraps ``{"state_dict": ...}``, strips ``module.``.

    With ``require_tensors`` every value must be a tensor (a plain network state dict).
    """
    path = os.fspath(path)
    sd = torch_load_official(path, what)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or (require_tensors and not all(torch.is_tensor(v) for v in sd.values())):
        raise V2VError(f"{path}: expected a state dict of tensors (official save_network format), "
                       f"got {type(sd).__name__}")
    return {k.removeprefix("module."): v for k, v in sd.items()}


# ------------------------------------------------------------------------------ option files

OPTION_FILES = ("opt.txt", "options.json", "config.json")


def parse_option_value(text: str):
    """One ``opt.txt`` value -> Python: ``True``/``False``/``None``, numbers, ``inf``, lists and
    tuples (``[0, 1]``); anything else stays a string. A trailing ``\\t[default: x]`` is dropped."""
    import ast

    t = text.split("\t[default:", 1)[0].strip()
    if t in ("True", "False"):
        return t == "True"
    if t in ("inf", "-inf"):
        return float(t)
    try:
        return ast.literal_eval(t)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return t


def read_options(path: str | os.PathLike, required: str | None = None, what: str = "official") -> dict:
    """The ONE reader of official option dumps, shared by every system's compat module.

    Args:
        path: an ``opt.txt`` (``name: value`` lines written by ``BaseOptions.parse()``, between
            ``---- Options ----`` rules), a JSON file (a mapping of options, or one with an
            ``"options"`` mapping), or a folder holding one of :data:`OPTION_FILES` (tried in order).
        required: an option name that must be present (a cheap check that this is the right
            system's dump), e.g. ``"netG"`` or ``"label_nc"``.
        what: the system named in error messages.

    Returns:
        ``{official name: value}`` with Python values (:func:`parse_option_value`).

    Errors are one-line :class:`V2VError`: missing file/folder, unreadable JSON, missing ``required``.
    """
    import json

    p = os.fspath(path)
    if os.path.isdir(p):
        for name in OPTION_FILES:
            if os.path.isfile(os.path.join(p, name)):
                p = os.path.join(p, name)
                break
        else:
            raise V2VError(f"{p}: no {' / '.join(OPTION_FILES)} with the {what} options")
    if not os.path.isfile(p):
        raise V2VError(f"{what} options file not found: {p}")
    if p.endswith(".json"):
        try:
            with open(p, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise V2VError(f"{p}: invalid JSON ({exc}; truncated?)") from None
        except RecursionError:
            raise V2VError(f"{p}: invalid JSON (nested too deeply)") from None
        except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
            raise V2VError(f"{p}: invalid JSON ({str(exc)[:100]})") from None
        opts = data.get("options", data) if isinstance(data, dict) else data
        if not isinstance(opts, dict):
            raise V2VError(f"{p}: expected a JSON object of {what} options")
        opts = dict(opts)
    else:
        opts = {}
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line.strip() or line.startswith("---") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                opts[k.strip()] = parse_option_value(v)
    if required and required not in opts:
        raise V2VError(f"{p}: not an {what} option dump (no '{required}' option)")
    validate_options(opts, p)
    return opts


# Official option names shared by the pix2pixHD family (vid2vid, EDN, ...) and their types. Sizes
# and widths are also range-checked, so a dump saying ngf=2**40 is refused before any allocation.
_SIZE_OPTION = re.compile(
    r"^(ngf|ndf|nef|feat_num|h_dim|latent_dim|style_dim|n_mlp|loadSize|fineSize|load_size|crop_size|"
    r"\w*_nc|\w*_ngf|\w*_ndf|n_downsample\w*|n_blocks\w*|n_layers\w*|num_D|n_frames\w*|n_scales\w*|"
    r"n_local_enhancers|batchSize|display_winsize)$")
_FLOAT_OPTION = re.compile(r"^(lr|beta1|beta2|lambda_\w*)$")
_BOOL_OPTION = re.compile(r"^(no_\w*|use_\w*|isTrain|continue_train|serial_batches|no_flip|fp16|verbose)$")
_STR_OPTION = re.compile(r"^(netG|netD|norm|model|dataset_mode|resize_or_crop|faceGtype|name|which_epoch)$")
#: largest width / size / count an option may hold (a 65536-channel conv is already ~17 GB)
MAX_SIZE_OPTION = 65536


def _finite(v) -> bool:
    import math

    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def validate_options(opts: dict, path: str = "options") -> dict:
    """Type- and range-check the options whose meaning is shared across official dumps.

    A wrong type (``ngf: abc``, ``no_flip: 3``, a truncated list) or an absurd size
    (``ngf: 1099511627776``, negative counts) is a one-line :class:`V2VError` naming the file and
    option. Unknown options are left alone. Returns ``opts``.
    """
    for k, v in opts.items():
        if v is None or not isinstance(k, str):
            continue
        if _SIZE_OPTION.match(k):
            vals = [v]
            for x in vals:
                if isinstance(x, float) and x.is_integer():
                    x = int(x)
                if isinstance(x, bool) or not isinstance(x, int):
                    raise V2VError(f"{path}: option '{k}' must be an integer, got {str(v)[:40]!r}")
                if not 0 <= x <= MAX_SIZE_OPTION:
                    raise V2VError(f"{path}: option '{k}' = {str(x)[:24]} is out of range [0, {MAX_SIZE_OPTION}] "
                                   "(it would allocate absurd memory)")
        elif _FLOAT_OPTION.match(k):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
                raise V2VError(f"{path}: option '{k}' must be a finite number, got {str(v)[:40]!r}")
        elif _BOOL_OPTION.match(k):
            if not (isinstance(v, bool) or (isinstance(v, int) and v in (0, 1))):
                raise V2VError(f"{path}: option '{k}' must be True or False, got {str(v)[:40]!r}")
        elif _STR_OPTION.match(k) and not isinstance(v, str):
            raise V2VError(f"{path}: option '{k}' must be a name, got {str(v)[:40]!r}")
    return opts
