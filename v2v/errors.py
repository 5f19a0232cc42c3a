"""The single user-facing error type.

Raise :class:`V2VError` for anything a user can fix (a bad path, a wrong shape, a config key,
a checkpoint that does not match). The message must name the file, key or value and what was
expected. The CLI prints it as one line on stderr and exits with status 2 (traceback with -v).
"""
from __future__ import annotations

import re

# ANSI/VT escape sequences (CSI ... final byte, OSC ... BEL/ST, lone ESC x) and other control chars
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text, limit: int | None = None) -> str:
    """``text`` without ANSI escape sequences or control characters, whitespace collapsed to one line.

    Used for every message that reaches the terminal, so text from a file or a library (a
    checkpoint's pickled strings, torch's errors) cannot move the cursor or recolour the terminal.
    """
    s = _CONTROL.sub(" ", _ANSI.sub("", str(text)))
    s = " ".join(s.split())
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 3)] + "..."
    return s


class V2VError(Exception):
    """A user error with a one-line, actionable message (escape codes and control characters removed)."""

    def __init__(self, message: str):
        text = _ANSI.sub("", str(message))
        if "\n" in text:  # multi-line messages (tables of problems) keep their lines, cleaned
            lines = [clean_text(line) for line in text.splitlines()]
            super().__init__("\n".join(line for line in lines if line))
        else:
            super().__init__(clean_text(text))


def closest(name: str, candidates) -> str | None:
    """The closest candidate to ``name`` (difflib), or None when nothing is close."""
    import difflib

    hits = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.5)
    return hits[0] if hits else None


def unknown_key_message(kind: str, name: str, candidates) -> str:
    """`unknown <kind> 'name' (did you mean 'x'?; valid: a, b, c)`."""
    cands = sorted(str(c) for c in candidates)
    hint = closest(name, cands)
    did = f"; did you mean '{hint}'?" if hint else ""
    listed = ", ".join(cands[:12]) + (", ..." if len(cands) > 12 else "")
    return f"unknown {kind} '{name}'{did} (valid: {listed})"
