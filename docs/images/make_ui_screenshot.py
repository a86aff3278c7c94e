"""Redraw docs/images/ui.jpg, the README's screenshot: the app (shipped weights) after a "Black hair" edit of
assets/astronaut.png, 1280 x 1000, in Debian's headless Chromium (run from the repository root with the app already
serving on http://127.0.0.1:7860: python app.py & python docs/images/make_ui_screenshot.py)."""

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7860/"
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(URL)
    page.locator("input[type=file]").first.set_input_files(str(ROOT / "assets" / "astronaut.png"))
    page.get_by_label("Black hair", exact=True).check(timeout=120_000)
    page.get_by_role("button", name="Edit", exact=True).click()
    page.wait_for_function("document.querySelectorAll('#before-after img').length === 2", timeout=120_000)
    page.wait_for_function("!document.body.innerText.includes('processing')", timeout=120_000)
    page.wait_for_timeout(1500)
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    shot.save(ROOT / "docs" / "images" / "ui.jpg", quality=85)
    browser.close()
