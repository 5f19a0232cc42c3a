"""The demo report rendered in headless Chromium (the serve test's Playwright setup): every section,
video, GIF and plot is present, and no image or video fails to load."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    from v2v.demo.pipeline import run_demo

    out = tmp_path_factory.mktemp("demo_browser") / "out"
    run_demo(str(out), quick=True, progress=False)
    return out / "index.html"


def test_demo_report_renders_in_chromium(quick_report, chromium):
    from conftest import CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(quick_report.as_uri())
        page.wait_for_load_state("load")
        titles = page.locator("section h2").all_inner_texts()
        assert titles[0] == "What v2v does"
        for want in ("FOMM", "vid2vid", "Dance", "Keyframes"):
            assert any(want.lower() in t.lower() for t in titles), (want, titles)
        # every card of the landing section jumps to a section that exists
        for href in page.locator("a.card").evaluate_all("els => els.map(e => e.getAttribute('href'))"):
            assert page.locator(href).count() == 1, href
        assert page.locator("svg").count() >= 4  # training curves
        broken_imgs = page.locator("img").evaluate_all(
            "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.src)")
        assert not broken_imgs, broken_imgs
        videos = page.locator("video")
        assert videos.count() >= 4
        page.wait_for_function(
            "() => [...document.querySelectorAll('video')].every(v => v.readyState >= 1 || v.error)")
        bad = videos.evaluate_all("els => els.filter(e => e.error || e.readyState < 1).map(e => e.src)")
        assert not bad, bad
        browser.close()
