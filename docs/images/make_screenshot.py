"""Writes docs/images/ui.jpg, the README's screenshot: the app (shipped weights) in headless Chromium after one edit of
assets/astronaut.png. Needs playwright and Debian's Chromium (`apt-get install -y chromium`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
RESULT_SHOWN = "document.querySelectorAll('#before-after img').length === 2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, app: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if app.poll() is not None:
            raise SystemExit("the app exited before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the app did not listen on port {port} within {timeout:.0f} s")


def screenshot(out: Path, photo: Path, hair_label: str = "Black hair", width: int = 1280, height: int = 900) -> Path:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    app = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, app)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("input[type=file]").first.set_input_files(str(photo))
            page.wait_for_function("!document.querySelector('#editor-row button.primary').disabled", timeout=60_000)
            page.get_by_label(hair_label, exact=True).check()
            page.get_by_role("button", name="Edit", exact=True).click()
            page.wait_for_function(RESULT_SHOWN, timeout=60_000)
            page.wait_for_function("!document.body.innerText.includes('processing')", timeout=60_000)
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(1000)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), type="jpeg", quality=85)
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=30)
    return out


if __name__ == "__main__":
    print(screenshot(ROOT / "docs" / "images" / "ui.jpg", ROOT / "assets" / "astronaut.png"))
