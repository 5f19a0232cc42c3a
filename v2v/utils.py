"""Small shared helpers: the output-path check, atomic writes, seeding.

Every file v2v writes goes through :func:`atomic_path` / :func:`atomic_write` (temp file beside
the target, ``os.replace`` on success): a crash never leaves a partial output, a symlink planted
at the target is replaced, never written through, and the file gets the umask's normal
permissions (0644 under umask 022), not ``mkstemp``'s 0600.

Every output a command is given goes through :func:`check_output_path` before any model work:
it refuses an output that resolves to, contains or lies inside one of the command's inputs, an
output under a regular file, and an output folder that is not writable. The CLI runs it for every
command's ``--out``/``--json``/``--*-out`` (:func:`check_cli_outputs`).
"""
from __future__ import annotations

import contextlib
import os
import random
import stat
import tempfile

from v2v.errors import V2VError

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write",
    "check_cli_outputs",
    "check_output_path",
    "default_file_mode",
    "read_json",
    "seed_everything",
    "staged_dir",
]


# ------------------------------------------------------------------------------ permissions
def _umask() -> int:
    try:  # Linux: read it without changing it (thread-safe)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    m = os.umask(0o022)
    os.umask(m)
    return m


def default_file_mode(directory: bool = False) -> int:
    """The mode ``open()``/``mkdir()`` would give a new file/folder under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


# ------------------------------------------------------------------------------ path checks
def _abs(p) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(p)))


def _real(p) -> str:
    return os.path.realpath(_abs(p))


def _inside(child: str, parent: str) -> bool:
    """``child`` is ``parent`` or lies below it (both resolved, absolute)."""
    if child == parent:
        return True
    return child.startswith(parent.rstrip(os.sep) + os.sep)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links, case-insensitive file systems
    except OSError:
        return False


def check_output_path(out, inputs=(), *, flag: str = "--out") -> str:
    """Check an output path before any work; returns it absolute (symlinks not resolved).

    Raises :class:`V2VError` (one line) when the output

    - resolves to one of ``inputs``, contains one, or lies inside one (``./X``, ``..`` and
      symlinks resolved on both sides; hard links compared by inode);
    - lies under a regular file (``file.png/out.mp4``);
    - would be created in a folder that is not writable.

    Args:
        out: the output path (file or folder; need not exist).
        inputs: paths the command reads (files or folders); ones that do not exist are ignored.
        flag: how the user spelled the option, for the message.
    Returns:
        ``os.path.abspath(out)``.
    """
    if out is None or str(out) == "":
        raise V2VError(f"{flag}: empty output path")
    a = _abs(out)
    r = _real(out)
    for inp in inputs:
        if inp is None or str(inp) == "" or not os.path.lexists(_abs(inp)):
            continue
        ri = _real(inp)
        if r == ri or _same_file(a, ri):
            raise V2VError(f"{flag} {out} is the input {inp}; choose another output path")
        if _inside(ri, r):
            raise V2VError(f"{flag} {out} contains the input {inp}; choose an output outside the inputs")
        if _inside(r, ri):
            raise V2VError(f"{flag} {out} lies inside the input {inp}; choose an output outside the inputs")
    # the nearest existing ancestor must be a writable folder
    probe = os.path.dirname(a.rstrip(os.sep)) or os.sep
    while not os.path.lexists(probe):
        up = os.path.dirname(probe)
        if up == probe:
            break
        probe = up
    if os.path.lexists(probe) and not os.path.isdir(probe):
        raise V2VError(f"{flag} {out}: {probe} is a file, not a folder; cannot write under it")
    if os.path.isdir(a) and not os.path.islink(a):
        if not _writable(a):
            raise V2VError(f"{flag} {out}: folder is not writable (permission denied or read-only)")
    elif not _writable(probe):
        raise V2VError(f"{flag} {out}: cannot write in {probe} (permission denied or read-only)")
    return a


def _writable(folder: str) -> bool:
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:  # root passes os.access everywhere; a read-only mount does not take a file
        fd, tmp = tempfile.mkstemp(prefix=".v2v-write-check.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return True


def _is_output_dest(dest: str) -> bool:
    return dest in ("out", "json") or dest.endswith("_out") or dest.startswith("out_")


def _path_values(v):
    if isinstance(v, (str, os.PathLike)):
        yield v
    elif isinstance(v, (list, tuple)):
        for x in v:
            if isinstance(x, (str, os.PathLike)):
                yield x


def _choice_dests(parser, args) -> set:
    """Dests of options with fixed ``choices`` (words, not paths) in the subcommand ``args`` ran."""
    import argparse

    out = set()
    if parser is None:
        return out
    for act in parser._actions:
        if isinstance(act, argparse._SubParsersAction):
            sub = act.choices.get(getattr(args, act.dest, None) or "")
            out |= _choice_dests(sub, args)
        elif act.choices is not None:
            out.add(act.dest)
    return out


def check_cli_outputs(args, parser=None) -> None:
    """Run :func:`check_output_path` on every output option of a parsed command line.

    Outputs are the options ``--out``, ``--json`` and ``--*-out``; inputs are every other string
    option or positional naming an existing path (options with fixed ``choices`` of the subcommand
    in ``parser`` are words, not paths). A command whose output folder is meant to hold
    its own inputs (``v2v train --out RUN --resume RUN``) sets ``out_holds_inputs=True`` as a
    parser default: its outputs are then only checked for writability.
    """
    d = vars(args)
    outs = [(k, v) for k, v in d.items() if _is_output_dest(k) and isinstance(v, (str, os.PathLike)) and v]
    if not outs:
        return
    inputs = []
    if not d.get("out_holds_inputs"):
        words = _choice_dests(parser, args)  # `data synth puppets --out puppets`: 'puppets' is a kind
        for k, v in d.items():
            if _is_output_dest(k) or k in ("func", "command", "device") or k in words:
                continue
            inputs += [p for p in _path_values(v) if p and os.path.lexists(_abs(p))]
    for k, v in outs:
        check_output_path(v, inputs, flag="--" + k.replace("_", "-"))


# ------------------------------------------------------------------------------ reading
def read_json(path, what: str = "JSON file", max_bytes: int = 256 * 2**20):
    """Parse a JSON file; every failure is a one-line :class:`V2VError` naming the file.

    Missing, a folder, not UTF-8, truncated or invalid JSON, integer literals beyond Python's
    digit limit, nesting deep enough to exhaust the recursion limit, or a file over ``max_bytes``.
    """
    import json

    p = os.fspath(path)
    try:
        if os.path.getsize(p) > max_bytes:
            raise V2VError(f"{p}: {what} is larger than {max_bytes >> 20} MiB")
        with open(p, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise V2VError(f"{what} not found: {p}") from None
    except IsADirectoryError:
        raise V2VError(f"{p}: is a folder, expected a {what}") from None
    except json.JSONDecodeError as e:
        why = "empty" if not e.doc.strip() else f"{e.msg} at line {e.lineno} column {e.colno}"
        raise V2VError(f"{p}: not a valid {what} ({why}; truncated?)") from None
    except UnicodeDecodeError:
        raise V2VError(f"{p}: not a valid {what} (not UTF-8 text)") from None
    except RecursionError:
        raise V2VError(f"{p}: not a valid {what} (nested too deeply)") from None
    except ValueError as e:  # e.g. an integer literal beyond the digit limit
        raise V2VError(f"{p}: not a valid {what} ({str(e)[:100]})") from None
    except OSError as e:
        raise V2VError(f"{p}: cannot read {what} ({e.strerror or e})") from None


# ------------------------------------------------------------------------------ atomic writes
def _prepare_parent(path: str) -> str:
    d = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(d, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise V2VError(f"cannot write {path}: a parent of it is a file, not a folder") from None
    except PermissionError:
        raise V2VError(f"cannot write {path}: permission denied creating {d}") from None
    except OSError as e:
        raise V2VError(f"cannot write {path}: {e.strerror or e}") from None
    return d


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temp path in the destination's directory; on success `os.replace` it onto ``path``.

    On an exception the temp file is removed and ``path`` is left untouched, so a crash never
    leaves a partial output. ``suffix`` defaults to the destination's extension (so writers that
    pick a format from the extension still work). A symlink at ``path`` is replaced by the new
    file (its target is never touched); the file gets the umask's permissions.
    """
    path = os.fspath(path)
    if os.path.isdir(path) and not os.path.islink(path):
        raise V2VError(f"cannot write {path}: it is a folder (expected a file path)")
    d = _prepare_parent(path)
    base = os.path.basename(path)
    if suffix is None:
        suffix = os.path.splitext(base)[1]
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=(".tmp" + suffix), dir=d)
    except PermissionError:
        raise V2VError(f"cannot write {path}: permission denied in {d}") from None
    except OSError as e:
        raise V2VError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        os.fchmod(fd, default_file_mode())
    finally:
        os.close(fd)
    try:
        yield tmp
        # a writer may have replaced the temp file (e.g. a library writing to a new inode)
        with contextlib.suppress(OSError):
            if stat.S_IMODE(os.lstat(tmp).st_mode) & 0o777 != default_file_mode():
                os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **kwargs):
    """Open a temp file for writing; it replaces ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def _temp_dir_beside(target: str, path) -> tuple[str, str]:
    """(parent, new hidden temp folder in it) for writing folder ``target``; one-line errors."""
    if os.path.lexists(target) and not os.path.isdir(target):
        raise V2VError(f"cannot write folder {path}: a file is in the way")
    parent = _prepare_parent(target)
    try:
        return parent, tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise V2VError(f"cannot write folder {path}: {e.strerror or e}") from None


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temp folder beside ``path``; on success it replaces ``path`` as a whole.

    An existing folder (or symlink) at ``path`` is moved aside and deleted only after the new one
    is in place; on an exception the temp folder is deleted and ``path`` is untouched. The folder
    gets the umask's permissions (``mkdtemp`` would give 0700).
    """
    import shutil

    target = os.path.abspath(os.fspath(path).rstrip("/\\") or os.sep)
    parent, tmp = _temp_dir_beside(target, path)
    os.chmod(tmp, default_file_mode(directory=True))
    try:
        yield tmp
        old = None
        if os.path.lexists(target):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".old", dir=parent)
            os.rmdir(old)
            os.replace(target, old)  # a symlink is moved aside as a link; its target is untouched
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
        if old is not None:
            if os.path.islink(old):
                os.unlink(old)
            else:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def staged_dir(path: str | os.PathLike):
    """Yield a temp folder beside ``path``; on success its files are moved into ``path``.

    Unlike :func:`atomic_dir` the existing folder is kept (files of the same name are replaced,
    others stay), so a command can write into a folder that already holds other results; on an
    exception nothing reaches ``path``. Each file lands with ``os.replace`` (a planted symlink is
    replaced, never written through).
    """
    import shutil

    target = os.path.abspath(os.fspath(path))
    _, tmp = _temp_dir_beside(target, path)
    try:
        yield tmp
        for dirpath, dirnames, filenames in os.walk(tmp):
            rel = os.path.relpath(dirpath, tmp)
            dst_dir = target if rel == "." else os.path.join(target, rel)
            if os.path.islink(dst_dir) or (os.path.lexists(dst_dir) and not os.path.isdir(dst_dir)):
                os.unlink(dst_dir)  # never write through a symlinked subfolder
            os.makedirs(dst_dir, mode=0o777, exist_ok=True)
            for name in filenames:
                os.replace(os.path.join(dirpath, name), os.path.join(dst_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
