"""`v2v serve` in a real browser: Playwright (python) drives Debian's Chromium through executable_path.

Never `playwright install` (it downloads a browser). Skips with a message when Chromium is absent;
fails instead when V2V_REQUIRE_BROWSER=1 (set by .ci/run).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from v2v.data.video import open_video


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    fh = open(log, "w")  # noqa: SIM115 - lives as long as the server
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "v2v", "serve", "--port", str(port), "--max-frames", "400"],
                            stdout=fh, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read(100)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > 180:
                    raise RuntimeError("v2v serve did not come up:\n" + log.read_text()) from None
                time.sleep(0.5)
        yield {"url": url, "port": port, "log": log, "startup_s": time.monotonic() - t0}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        fh.close()


@pytest.fixture(scope="module")
def page(server, chromium):
    from conftest import CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        pg = browser.new_page(accept_downloads=True)
        pg.set_default_timeout(240_000)
        pg.goto(server["url"])
        yield pg
        browser.close()


def test_page_lists_every_built_system(page):
    from v2v.serve.app import job_specs

    titles = [s.title for s in job_specs()]
    assert titles[:3] == ["Animate (FOMM)", "Label maps → video (vid2vid)", "Dance transfer"]
    page.get_by_role("tab", name=titles[0]).first.wait_for()  # the app renders after the HTML loads
    for title in titles:  # Gradio may fold extra tabs into an overflow menu: count both
        n = page.get_by_role("tab", name=title).count() + page.get_by_role("button", name=title).count()
        assert n >= 1, title


def test_animate_real_upload_progress_and_download(page, server, shared, tmp_path):
    src = shared / "data" / "animation" / "source" / "05.png"
    drv = shared / "data" / "animation" / "driving" / "08.mp4"  # 150 frames at 35 fps
    page.get_by_role("tab", name="Animate (FOMM)").click()
    page.locator("#animate-source-upload input[type=file]").set_input_files(str(src))
    page.locator("#animate-driving-upload input[type=file]").set_input_files(str(drv))
    page.locator("#animate-run").click()
    # the tqdm-driven progress bar shows while the job runs, then the result arrives
    page.locator(".progress-text, .eta-bar, .progress-level").first.wait_for(state="attached")
    link = page.locator("#animate-files a[download]").first
    link.wait_for()
    with page.expect_download() as dl:
        link.click()
    out = tmp_path / "animated.mp4"
    dl.value.save_as(out)
    with open_video(drv) as d, open_video(out) as o:
        assert o.num_frames == d.num_frames == 150
        assert abs(o.fps - d.fps) < 1e-3
    # the server opened no connection to any other host while serving and running the job
    assert "refused" not in server["log"].read_text()


def test_bad_upload_shows_the_cli_error(page, shared, tmp_path):
    bad = tmp_path / "notavideo.mp4"
    bad.write_text("this is a text file, not a video\n")
    page.reload()
    page.get_by_role("tab", name="Animate (FOMM)").click()
    src = shared / "data" / "animation" / "source" / "05.png"
    page.locator("#animate-source-upload input[type=file]").set_input_files(str(src))
    page.locator("#animate-driving-upload input[type=file]").set_input_files(str(bad))
    page.locator("#animate-run").click()
    # the same one-line message the CLI prints for this file
    page.get_by_text("cannot decode (truncated or not a video)").first.wait_for()
