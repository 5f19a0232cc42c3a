"""The single user-facing error type.

Raise :class:`V2VError` for anything a user can fix (a bad path, a wrong shape, a config key,
a checkpoint that does not match). The message must name the file, key or value and what was
expected. The CLI prints it as one line on stderr and exits with status 2 (traceback with -v).
"""


class V2VError(Exception):
    """A user error with a one-line, actionable message."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()) if "\n" not in str(message) else str(message))


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
