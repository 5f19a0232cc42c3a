"""Reading official checkpoint files, shared by every system's compat module.

Official files are read with ``torch.load(map_location="cpu", weights_only=True)`` only: nothing
is unpickled beyond tensors and plain containers, legacy (torch 1.0, non-zip) and zip
serializations both work, and storages saved on ``cuda:0`` land on the CPU.
"""
from __future__ import annotations

import os

import torch

from v2v.errors import V2VError

__all__ = ["OPTION_FILES", "official_state_dict", "parse_option_value", "read_options", "torch_load_official"]


def torch_load_official(path: str | os.PathLike, what: str = "checkpoint"):
    """Load an official file on CPU with ``weights_only=True``; V2VError when missing or unreadable."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise V2VError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for foreign files
        raise V2VError(f"{path}: cannot read as a torch checkpoint ({type(exc).__name__}: {exc})") from None


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
            raise V2VError(f"{p}: invalid JSON ({exc})") from None
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
    return opts
