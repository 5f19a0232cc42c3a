"""One parity-report type shared by every system's parity runner.

A runner compares arrays produced by v2v with arrays produced by the official code::

    rep = ParityReport("img2vid", fixture_dir)
    cases = load_cases(path)                    # refuses pickled objects
    rep.compare("case_a/flow", ours, cases["flow"], atol=1e-5)
    rep.compare("case_c/loss_kl", ours, expected, rtol=1e-5)
    rep.missing("case_a/warped")                # expected but not produced -> a failure
    return rep                                  # rep.ok, rep.rows, rep.print(), rep.exit_code

A row fails when the shapes differ or ``|ours - expected| > atol + rtol * |expected|``
anywhere (NaN in either array fails unless both are NaN at the same places).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from v2v.errors import V2VError

__all__ = ["ParityReport", "ParityRow", "load_cases"]


@dataclass
class ParityRow:
    name: str
    err: float  # max |ours - expected| (inf when not produced or shapes differ)
    atol: float
    rtol: float
    ok: bool
    note: str = ""


@dataclass
class ParityReport:
    """Rows of one parity run; ``ok`` when every row is within its tolerance (and there is one)."""

    system: str
    fixture: str
    rows: list[ParityRow] = field(default_factory=list)

    def compare(self, name: str, ours, expected, atol: float = 1e-4, rtol: float = 0.0, note: str = "") -> ParityRow:
        a = _as_np(ours)
        b = _as_np(expected)
        if a.shape != b.shape:
            row = ParityRow(name, float("inf"), atol, rtol, False, f"shape {a.shape} vs expected {b.shape}")
        elif a.size == 0:
            row = ParityRow(name, 0.0, atol, rtol, True, note)
        else:
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            nan_a, nan_b = np.isnan(a64), np.isnan(b64)
            if (nan_a != nan_b).any():
                row = ParityRow(name, float("nan"), atol, rtol, False, "NaN where the other has a value")
            else:
                diff = np.abs(np.where(nan_a, 0.0, a64 - b64))
                bound = atol + rtol * np.abs(np.where(nan_b, 0.0, b64))
                err = float(diff.max())
                row = ParityRow(name, err, atol, rtol, bool((diff <= bound).all()), note)
        self.rows.append(row)
        return row

    def missing(self, name: str, why: str = "not produced") -> ParityRow:
        row = ParityRow(name, float("inf"), 0.0, 0.0, False, why)
        self.rows.append(row)
        return row

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def worst(self) -> float:
        errs = [r.err for r in self.rows if np.isfinite(r.err)]
        return max(errs) if errs else float("nan")

    def summary(self) -> str:
        n_ok = sum(r.ok for r in self.rows)
        return (f"{self.system} parity {self.fixture}: {n_ok}/{len(self.rows)} arrays within tolerance, "
                f"worst {self.worst:.3e} -> {'PASS' if self.ok else 'FAIL'}")

    def lines(self) -> list[str]:
        out = []
        for r in self.rows:
            tol = f"atol {r.atol:g}" + (f" rtol {r.rtol:g}" if r.rtol else "")
            note = f"  {r.note}" if r.note else ""
            out.append(f"{'ok  ' if r.ok else 'FAIL'} {r.name:48s} max|diff| {r.err:.3e}  ({tol}){note}")
        return out

    def print(self, printer=print) -> None:
        for line in self.lines():
            printer(line)
        printer(self.summary())


def _as_np(x) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x)


def load_cases(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a fixture ``.npz`` fully into memory, refusing pickled objects (``allow_pickle=False``).

    Errors are one-line :class:`V2VError`: missing file, not a zip/npz, or an array holding
    Python objects (which would need unpickling to read).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise V2VError(f"fixture file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise V2VError(f"{path}: holds pickled Python objects; v2v reads only plain arrays "
                           f"(regenerate the fixture with numeric arrays)") from None
        raise V2VError(f"{path}: not a readable .npz ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise V2VError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from None
