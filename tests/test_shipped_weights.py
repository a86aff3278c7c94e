"""Tests on the shipped weights in weights/ (skipped when a file is missing)."""

from pathlib import Path

import numpy as np
import pytest
from conftest import WEIGHTS, needs_weights

from stargan_app.inference import ClassSampler, FaceEditor

pytestmark = pytest.mark.shipped_weights


@needs_weights("stargan_celeba.safetensors")
def test_shipped_stargan_edits_and_strength_zero_keeps_the_photo():
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    editor = FaceEditor.from_pretrained()
    img = Image.fromarray(skimage_data.astronaut())
    prep = editor.prepare(img)
    before = np.asarray(prep.aligned.crop, np.float32)
    kept = np.asarray(editor.edit(prep, {"Black_Hair": True}, strength=0.0, keep_detail=False).face_after, np.float32)

    def hair_change(colour: str) -> float:  # 95th percentile of the per-pixel change of the face crop, 8-bit levels
        flipped = np.asarray(editor.edit(prep, {colour: True}, keep_detail=False).face_after, np.float32)
        return float(np.percentile(np.abs(flipped - kept).mean(2), 95))

    # a colour the model reads the hair as already having changes nothing, so the test takes the strongest of two
    changes = {c: hair_change(c) for c in ("Black_Hair", "Blond_Hair")}
    assert max(changes.values()) > 25, changes  # a hair colour visibly changes part of the face
    # Strength 0 is the model's own reconstruction G(x, c_src): `eval stargan` measures it on held-out faces;
    # this guards against a regression on one out-of-distribution photo.
    assert np.abs(kept - before).mean() < 0.25 * 127.5
    assert np.array_equal(np.asarray(editor.edit(prep, {"Black_Hair": True}, strength=0.0).image), np.asarray(img))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=needs_weights(f"cgan_{n}.safetensors")) for n in ("mnist", "fashion")]
)
def test_shipped_cgan_loads(name):
    sampler = ClassSampler.from_pretrained(name)
    assert len(sampler.classes) == 10 and sampler.grid(n_per_class=2).size[1] > 10 * 28


MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.mark.shared_data
@pytest.mark.skipif(not (MNIST / "train-images-idx3-ubyte.gz").exists(), reason="no ../shared/data/mnist")
@needs_weights("cgan_mnist.safetensors")
def test_shipped_mnist_digits_are_class_consistent():
    """A tiny CNN trained here on 2,000 real digits reads the shipped generator's samples about as well as real ones."""
    import torch

    from stargan_app.data.idx import load_idx_dataset
    from stargan_app.evaluation.cgan import class_accuracy, sample_per_class, train_digit_classifier

    images, labels = load_idx_dataset("mnist", str(MNIST), "train")
    test_images, test_labels = load_idx_dataset("mnist", str(MNIST), "test")
    clf = train_digit_classifier(images[:2000], labels[:2000], epochs=4)
    real = class_accuracy(clf, test_images[:1000], test_labels[:1000])
    samples, sample_labels = sample_per_class(ClassSampler.from_pretrained("mnist"), per_class=50)
    fake = class_accuracy(clf, samples, sample_labels)
    shuffled = class_accuracy(clf, samples, sample_labels[torch.randperm(len(sample_labels))])
    assert real > 0.85, real  # the judge itself is competent
    assert fake > real - 0.08, (fake, real)
    assert shuffled < 0.3  # the check can fail: wrong labels are caught


@needs_weights("stargan_celeba.safetensors", "stargan_celeba.regions.safetensors", "hair_colours.safetensors")
def test_eval_judges_a_candidate_with_the_hair_colour_model_it_is_told(tmp_path):
    """A run's candidate has no colour model beside it: `eval stargan --hair-colours FILE` serves it as the app does."""
    import shutil

    from stargan_app.evaluation.stargan import eval_editor

    candidate = shutil.copy(WEIGHTS / "stargan_celeba.safetensors", tmp_path / "candidate.safetensors")
    regions = str(WEIGHTS / "stargan_celeba.regions.safetensors")

    def colours(option: str | None):
        return eval_editor(str(candidate), None, None, regions, None, False, option).compositor.hair_colours

    assert colours(None) is None and colours("off") is None
    assert colours(str(WEIGHTS / "hair_colours.safetensors")) is not None
