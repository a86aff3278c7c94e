"""Launch the app on a free loopback port and drive its named API with gradio_client."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("gradio_client")
skimage_data = pytest.importorskip("skimage.data")
pytestmark = pytest.mark.skipif(not (ROOT / "weights" / "stargan_celeba.safetensors").exists(),
                                reason="no shipped StarGAN weights")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(proc.stdout.read())
            time.sleep(0.5)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


def test_detect_edit_and_bad_input(client, astronaut, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    faces = client.predict(handle_file(str(astronaut)), api_name="/detect")
    assert len(faces) == 1 and faces[0]["score"] > 0.95
    out = client.predict(handle_file(str(astronaut)), "Black_Hair", None, 1.0, 0, api_name="/edit")
    assert Image.open(out).size == (512, 512)
    junk = tmp_path / "page.png"
    junk.write_text("<html><body>not an image</body></html>")
    with pytest.raises(Exception, match="Could not read this file as an image"):
        client.predict(handle_file(str(junk)), api_name="/detect")
    assert len(client.predict(handle_file(str(astronaut)), api_name="/detect")) == 1  # still answering


@pytest.mark.skipif(not (ROOT / "weights" / "cgan_mnist.safetensors").exists(), reason="no shipped MNIST weights")
def test_sample_count(client):
    assert len(client.predict("mnist", "3", 5, 0, api_name="/sample")) == 5
