"""Screenshots of the rating page (`skingen rate serve`) for the documentation (not a test).

Usage: python scripts/rate_screenshots.py [--out docs/img] [--chromium /usr/bin/chromium]

Serves a throwaway study of procedural demo crops (128 px; never clinical images: these files go into the
repository) with the real CLI, drives headless Chromium through it with Playwright and saves
``rate-start.png``, ``rate-single.png``, ``rate-single-confidence.png``, ``rate-pair.png``,
``rate-likert.png``, ``rate-done.png`` (1000 px wide) and ``rate-pair-phone.png`` (390x844). Each PNG is
reduced to a 128-colour palette so it stays small in the repository.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from rate_load import demo_sets, serve  # noqa: E402  (bench/rate_load.py: demo study served by the CLI)

# Debian's Chromium in a container: no sandbox, no GPU, nothing fetched from the network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1000, "height": 760}
PHONE = {"width": 390, "height": 844}


def save(page, path: Path, full_page: bool = True, only_content: bool = False) -> None:
    """A screenshot (the whole page, the viewport, or ``only_content``: the page's ``main`` element) as a
    128-colour PNG (the page's flat colours survive; the photos lose a little)."""
    from PIL import Image

    png = page.locator("main").screenshot() if only_content else page.screenshot(full_page=full_page)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"{path} ({path.stat().st_size // 1024} KB)")


def answer(page, key: str) -> None:
    """Press ``key`` once the answer buttons are enabled (the images have loaded)."""
    page.wait_for_function("() => [...document.querySelectorAll('#choices button')].some(b => !b.disabled)")
    page.keyboard.press(key)


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable (none is downloaded)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        real, fake = demo_sets(work, 6, size=128)  # --n 2: 6 images of each set
        with serve(work / "demo-study", ["--real", str(real), "--synthetic", f"demo={fake}", "--n", "2"],
                   work / "server.log") as (base, _), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=DESKTOP)
            page.goto(base + "/")
            page.wait_for_selector("#start:not([hidden])")
            save(page, args.out / "rate-start.png", only_content=True)
            page.click("#start-button")
            shot = {"single": "rate-single.png", "pair": "rate-pair.png", "likert": "rate-likert.png"}
            confidence_shot = "rate-single-confidence.png"
            while True:
                page.wait_for_selector("#rate:not([hidden]), #done:not([hidden])")
                if page.is_visible("#done"):
                    break
                answer_count = page.text_content("#counter")
                mode = page.evaluate("() => current.mode")
                page.wait_for_function(
                    "() => [...document.querySelectorAll('#choices button')].some(b => !b.disabled)")
                if mode in shot:
                    save(page, args.out / shot.pop(mode))
                    if mode == "pair":
                        page.set_viewport_size(PHONE)
                        save(page, args.out / "rate-pair-phone.png", full_page=False)
                        page.set_viewport_size(DESKTOP)
                if mode == "single":
                    answer(page, "r")
                    page.wait_for_selector("#choices .label")
                    if confidence_shot:
                        page.wait_for_function(
                            "() => [...document.querySelectorAll('#choices button')].some(b => !b.disabled)")
                        save(page, args.out / confidence_shot)
                        confidence_shot = None
                    answer(page, "4")
                elif mode == "pair":
                    answer(page, "ArrowLeft")
                else:
                    answer(page, "3")
                page.wait_for_function("(before) => document.getElementById('counter').textContent !== before "
                                       "|| !document.getElementById('done').hidden", arg=answer_count)
            save(page, args.out / "rate-done.png", only_content=True)
            browser.close()


if __name__ == "__main__":
    main()
