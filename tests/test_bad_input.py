"""Every bad or awkward input through FaceEditor (tiny random StarGAN, real MTCNN): a clear error or a result."""

import re

import pytest
from bad_inputs import Edited, cases
from conftest import tiny_stargan

from stargan_app.errors import StarGANAppError
from stargan_app.inference import FaceEditor

skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("facenet_pytorch")

from PIL import Image  # noqa: E402

CASES = cases(Image.fromarray(skimage_data.astronaut()))


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return FaceEditor(*tiny_stargan())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_face_editor_answers_bad_input_clearly(editor, case):
    if isinstance(case.expect, Edited):
        result = editor.edit(case.data, **case.edit)
        assert result.image.size == case.expect.size and result.image.mode == "RGB"
    else:
        with pytest.raises(StarGANAppError, match=re.escape(case.expect.message)):
            editor.edit(case.data, **case.edit)
