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
    change, recon = np.abs(flipped - before).mean(), np.abs(kept - before).mean()
    assert change > 1.5 * recon, (change, recon)
    assert recon < 0.12 * 127.5  # reconstruction L1 on [-1, 1] below 0.12


@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_shipped_cgan_loads(name):
    if not (WEIGHTS / f"cgan_{name}.safetensors").exists():
        pytest.skip(f"no shipped cgan_{name} weights")
    sampler = ClassSampler.from_pretrained(name)
    assert len(sampler.classes) == 10 and sampler.grid(n_per_class=2).size[1] > 10 * 28
