"""Launch the app on a free loopback port and drive its named API with gradio_client."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("gradio_client")
skimage_data = pytest.importorskip("skimage.data")
pytestmark = pytest.mark.skipif(not (ROOT / "weights" / "stargan_celeba.safetensors").exists(),
                                reason="no shipped StarGAN weights")


def test_detect_edit_and_bad_input(app_url, astronaut, tmp_path):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
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
def test_sample_count(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    assert len(client.predict("mnist", "3", 5, 0, api_name="/sample")) == 5
