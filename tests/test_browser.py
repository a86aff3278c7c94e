"""Real-browser test: Playwright drives Debian's Chromium against the running app; screenshots go to artifacts/."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed (apt-get install -y chromium)"),
    pytest.mark.skipif(not (ROOT / "weights" / "stargan_celeba.safetensors").exists(), reason="no shipped weights"),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_upload_edit_and_digits_grid(app_url, astronaut):
    from playwright.sync_api import sync_playwright

    shots = ROOT / "artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(app_url)
        page.locator("input[type=file]").first.set_input_files(str(astronaut))
        page.get_by_text("1 face(s) found").wait_for(timeout=60_000)
        text = page.inner_text("body")
        assert "Blond hair" in text and "Glasses" in text and "Wearing_Hat" not in text  # human labels
        assert "Faces found" not in text  # the picker hides itself for a single face
        page.get_by_label("Blond hair").check()
        page.get_by_role("button", name="Edit", exact=True).click()
        # input photo, edited photo, face before, face after
        page.wait_for_function("document.querySelectorAll('img').length >= 4", timeout=60_000)
        page.wait_for_timeout(500)
        page.wait_for_function("!document.body.innerText.includes('queue:')", timeout=60_000)
        page.screenshot(path=str(shots / "face_editor_1280.png"), full_page=True)
        images_before = page.evaluate("document.querySelectorAll('img').length")
        page.get_by_role("button", name="Show every single edit").click()
        page.wait_for_function(f"document.querySelectorAll('img').length >= {images_before + 9}", timeout=60_000)
        page.wait_for_function("!document.body.innerText.includes('processing')", timeout=60_000)
        page.wait_for_timeout(500)
        text = page.inner_text("body")
        for caption in ("Gray hair", "Hat", "Mustache", "Glasses"):
            assert text.count(caption) >= 2, caption  # the control's label and the gallery tile's caption
        page.screenshot(path=str(shots / "edit_gallery_1280.png"), full_page=True)
        page.set_viewport_size({"width": 400, "height": 800})
        page.screenshot(path=str(shots / "face_editor_400.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.get_by_role("tab", name="Digits & clothing").click()
        if (ROOT / "weights" / "cgan_mnist.safetensors").exists():
            before = page.evaluate("document.querySelectorAll('img').length")
            page.get_by_role("button", name="All classes").click()
            page.wait_for_function(f"document.querySelectorAll('img').length > {before}", timeout=60_000)
            page.wait_for_function("!document.body.innerText.includes('queue:')", timeout=60_000)
        page.screenshot(path=str(shots / "digits_1280.png"), full_page=True)
        page.set_viewport_size({"width": 400, "height": 800})
        page.screenshot(path=str(shots / "digits_400.png"), full_page=True)
        browser.close()
