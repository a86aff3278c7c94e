"""Shared pytest configuration and fixtures."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "shared_data: needs the data sets under ../shared/data (skipped when absent)",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    """`python app.py` on a free loopback port, as a subprocess."""

    def __init__(self, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        full_env = {**os.environ, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_ANALYTICS_ENABLED": "False", **env}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail(self.proc.stdout.read())
                time.sleep(0.5)
        self.stop()
        pytest.fail("the app did not start listening within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def running_app():
    """The app (shipped weights) with its default settings, shared by the HTTP tests."""
    app = RunningApp()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="session")
def app_url(running_app) -> str:
    return running_app.url


@pytest.fixture(scope="session")
def astronaut(tmp_path_factory) -> Path:
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path
