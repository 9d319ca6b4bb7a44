"""End to end in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright clicks
through a short study served by uvicorn; the database is checked afterwards.

Skips with a reason where no browser is installed, unless ``SKINGEN_REQUIRE_BROWSER=1`` (set by ``.ci/run``,
which installs one)."""

import os
import shutil
import socket
import sqlite3
import threading
import time

import pytest

from skingen.rating.study import RatingStudyConfig, create_study, sources_from_args
from tests.rating.conftest import write_fakes

# Flags a sandboxed, offline machine needs: no sandbox as root, and no background calls to Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = os.environ.get("SKINGEN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("SKINGEN_REQUIRE_BROWSER") == "1":
            pytest.fail("SKINGEN_REQUIRE_BROWSER=1 but no chromium (or no playwright) is installed")
        pytest.skip("no Chromium browser or Playwright installed (Debian: apt-get install chromium)")
    return path


@pytest.fixture()
def server(tiny_data, tmp_path):
    import uvicorn

    from skingen.rating.app import create_app

    fakes = write_fakes(tmp_path / "fakes", n=6)
    study = tmp_path / "study"
    create_study(study, sources_from_args(str(tiny_data), [f"gan={fakes}"]), RatingStudyConfig(n=2))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(study), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", study
    srv.should_exit = True
    thread.join(10)


def _ready(page):
    page.wait_for_function("() => [...document.querySelectorAll('#choices button')].some(b => !b.disabled)")


def test_a_rater_clicks_through_a_study(server):
    from playwright.sync_api import sync_playwright

    url, study = server
    clicked, parts = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone screen
        page.goto(url)
        page.click("#start-button")
        page.wait_for_selector("#rate:not([hidden])")
        n = 0
        while page.is_hidden("#done"):
            _ready(page)
            prompt = page.text_content("#prompt")
            parts.append(page.text_content("#part"))
            use_keys = n % 2 == 1
            if "real or synthetic" in prompt:
                answer = "synthetic" if n % 3 else "real"
                page.keyboard.press(answer[0]) if use_keys else page.click(f"#choices button[data-value={answer}]")
                page.wait_for_selector("#choices .label")
                _ready(page)
                page.keyboard.press("5") if use_keys else page.click("#choices button[data-value='2']")
                clicked.append(("single", answer, 5 if use_keys else 2))
            elif "Which" in prompt:
                answer = "right" if n % 3 else "left"
                page.keyboard.press({"left": "ArrowLeft", "right": "ArrowRight"}[answer]) if use_keys else \
                    page.click(f"#choices button[data-value={answer}]")
                clicked.append(("pair", answer, None))
            else:
                answer = str(1 + n % 5)
                page.keyboard.press(answer) if use_keys else page.click(f"#choices button[data-value='{answer}']")
                clicked.append(("likert", answer, None))
            n += 1
            page.wait_for_function(f"() => document.getElementById('counter').textContent.startsWith("
                                   f"'Question {n + 1} ') || !document.getElementById('done').hidden")
        code = page.text_content("#who")
        # a reload continues the finished session (cookie), it does not start a new rater
        page.reload()
        page.wait_for_selector("#done:not([hidden])")
        browser.close()
    con = sqlite3.connect(study / "study.sqlite")
    rows = con.execute("SELECT i.mode, a.answer, a.confidence, a.rt_ms FROM answers a JOIN items i ON i.id = a.item "
                       "ORDER BY a.position").fetchall()
    raters = con.execute("SELECT COUNT(*) FROM raters").fetchone()[0]
    con.close()
    assert raters == 1 and "rater-01" in code
    assert len(clicked) == 4 + 2 + 4  # n=2, one synthetic set: single 2 + 2 real, 2 pairs, likert 2 + 2 real
    assert [(m, a, c) for m, a, c, _ in rows] == clicked
    assert all(0 <= rt < 60_000 for *_, rt in rows)
    assert parts == ["Part 1 of 3"] * 4 + ["Part 2 of 3"] * 2 + ["Part 3 of 3"] * 4  # one section per mode
