"""Launch the app on a free loopback port and drive its named API with gradio_client."""

from pathlib import Path

import pytest
from conftest import needs_weights

pytest.importorskip("gradio_client")
skimage_data = pytest.importorskip("skimage.data")
pytestmark = [pytest.mark.shipped_weights, needs_weights("stargan_celeba.safetensors")]


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


@needs_weights("cgan_mnist.safetensors")
def test_sample_count(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    assert len(client.predict("mnist", "3", 5, 0, api_name="/sample")) == 5


def test_named_endpoints_are_described_and_ui_events_private(app_url):
    from gradio_client import Client

    api = Client(app_url, verbose=False).view_api(return_format="dict", print_info=False)
    named = api["named_endpoints"]
    assert set(named) == {"/detect", "/edit", "/preview_grid", "/sample", "/sample_grid"}, set(named)
    assert not api["unnamed_endpoints"]  # the UI's own events are api_visibility="private"
    for name, info in named.items():
        assert len(info["description"]) > 20 and "Args:" not in info["description"], name  # the summary line(s) only
    assert [p["parameter_name"] for p in named["/sample"]["parameters"]] == ["dataset", "label", "n", "seed"]
    assert [p["parameter_default"] for p in named["/sample"]["parameters"]] == ["mnist", "0", 16, 0]


@needs_weights("cgan_mnist.safetensors")
def test_sample_grid_is_a_file(app_url):
    from gradio_client import Client
    from PIL import Image

    client = Client(app_url, verbose=False)
    with Image.open(client.predict("mnist", 0, api_name="/sample_grid")) as grid:
        assert grid.width > 0 and grid.height > 0
    first = client.predict("mnist", "3", 2, 0, api_name="/sample")[0]
    assert set(first) == {"image", "caption"} and Path(first["image"]).exists()  # the Gallery's shape, as before
