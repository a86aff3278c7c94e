"""The bad-input table through the running app's /edit endpoint: a readable error or a photo, and the server
keeps answering the next normal request."""

import pytest
from bad_inputs import Edited, cases
from conftest import needs_weights

from stargan_app.config import HAIR_COLOURS

pytest.importorskip("gradio_client")
skimage_data = pytest.importorskip("skimage.data")
pytestmark = [pytest.mark.shipped_weights, needs_weights("stargan_celeba.safetensors")]

from PIL import Image  # noqa: E402

CASES = cases(Image.fromarray(skimage_data.astronaut()))


def edit_arguments(edit: dict) -> tuple:
    """FaceEditor.edit keywords -> the /edit endpoint's (hair, attributes to switch on, strength, face index)."""
    targets = edit.get("targets", {})
    hair = next((a for a, on in targets.items() if on and a in HAIR_COLOURS), "keep")
    others = [a for a, on in targets.items() if on and a not in HAIR_COLOURS]
    return hair, others or None, edit.get("strength", 1.0), edit.get("face_index", 0)


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_edit_endpoint_answers_bad_input_clearly(client, case, tmp_path, astronaut):
    from gradio_client import handle_file

    upload = tmp_path / case.filename
    upload.write_bytes(case.data)
    args = (handle_file(str(upload)), *edit_arguments(case.edit))
    if isinstance(case.expect, Edited):
        with Image.open(client.predict(*args, api_name="/edit")) as out:
            assert out.size == case.expect.size
    else:
        with pytest.raises(Exception) as info:
            client.predict(*args, api_name="/edit")
        message = str(info.value)
        assert case.expect.message in message and "Traceback" not in message, message
    assert len(client.predict(handle_file(str(astronaut)), api_name="/detect")) == 1  # still answering
