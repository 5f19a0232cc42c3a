"""Shared pytest fixtures.

`shared` finds the `../shared` folder (real data and official fixtures) beside the checkout,
or `$V2V_SHARED`. When it is absent, tests that need it skip with a message; with
`V2V_REQUIRE_SHARED=1` (set by .ci/run) they fail instead.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared_dir() -> Path | None:
    env = os.environ.get("V2V_SHARED")
    cands = [Path(env)] if env else []
    cands.append(REPO.parent / "shared")
    for c in cands:
        if c.is_dir() and (c / "fixtures").is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path to ../shared; skip (or fail under V2V_REQUIRE_SHARED=1) when absent."""
    d = _shared_dir()
    if d is None:
        msg = "../shared (real data and official fixtures) not found beside the checkout; set V2V_SHARED"
        if os.environ.get("V2V_REQUIRE_SHARED") == "1":
            pytest.fail(msg + " (V2V_REQUIRE_SHARED=1)")
        pytest.skip(msg)
    return d


@pytest.fixture(autouse=True)
def _torch_threads():
    """Keep tests deterministic and light on the 2-core CI machines."""
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        pass
    yield


@pytest.fixture
def run_cli(capsys):
    """Run `v2v ...` in-process; returns (exit_code, stdout, stderr)."""
    from v2v.cli import main

    def _run(*argv):
        rc = main([str(a) for a in argv])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return _run


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium for Playwright (never `playwright install`): skip with a message when it
    is absent, fail instead under V2V_REQUIRE_BROWSER=1 (set by .ci/run)."""
    import shutil

    exe = os.environ.get("V2V_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        msg = "Debian's chromium is not installed (apt-get install chromium); the browser tests need it"
        if os.environ.get("V2V_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " (V2V_REQUIRE_BROWSER=1)")
        pytest.skip(msg)
    return exe
