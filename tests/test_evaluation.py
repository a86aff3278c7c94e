"""Fast tests of the evaluation helpers and `eval stargan` on a synthetic CelebA layout."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan_app.evaluation import cgan as evaluation
from stargan_app.evaluation import classifier

ATTRS = [
    "Bangs",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Mustache",
    "Eyeglasses",
    "Male",
]


def quadrant_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n,28,28) noise images; class = which quadrant is bright."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = torch.randint(0, 60, (n, 28, 28), generator=g, dtype=torch.uint8)
    for i, k in enumerate(labels.tolist()):
        r, c = divmod(k, 2)
        images[i, r * 14 : (r + 1) * 14, c * 14 : (c + 1) * 14] += 180
    return images, labels


@pytest.fixture(scope="module")
def quadrant_classifier():
    torch.set_num_threads(1)
    x, y = quadrant_task(512, 0)
    return evaluation.train_digit_classifier(x, y, epochs=2, seed=0)


def test_classifier_learns_separable_task(quadrant_classifier):
    x, y = quadrant_task(200, 1)
    assert evaluation.class_accuracy(quadrant_classifier, x, y) > 0.9


def test_diversity_ratio(quadrant_classifier):
    real, labels = quadrant_task(200, 2)
    same = real[:1].repeat(len(real), 1, 1)
    same_labels = labels[:1].repeat(len(real))
    ratio, per_class = evaluation.diversity_ratio(quadrant_classifier, same, same_labels, real, labels)
    assert ratio == pytest.approx(0.0, abs=1e-6) and len(per_class) == 1
    other, other_labels = quadrant_task(200, 3)
    ratio, per_class = evaluation.diversity_ratio(quadrant_classifier, other, other_labels, real, labels)
    assert set(per_class) == {0, 1, 2, 3}
    assert ratio == pytest.approx(1.0, abs=0.15)


def test_classifier_cache_roundtrip(tmp_path, quadrant_classifier):
    path = tmp_path / "c.pt"
    model, cached = classifier.cached_classifier(path, lambda: quadrant_classifier, lambda: classifier.SmallCNN(1, 4))
    assert not cached and path.is_file()
    again, cached = classifier.cached_classifier(path, lambda: pytest.fail("retrained"), lambda: classifier.SmallCNN(1, 4))
    x, _ = quadrant_task(16, 4)
    assert cached and torch.equal(classifier.predict_logits(again, x), classifier.predict_logits(model, x))


def make_celeba(root: Path, n: int = 30) -> Path:
    (root / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        Image.fromarray(rng.integers(0, 255, (109, 89, 3), dtype=np.uint8)).save(root / "img_align_celeba" / name)
        values = rng.choice([-1, 1], size=len(ATTRS), p=[0.6, 0.4])
        rows.append(name + " " + " ".join(f"{v:2d}" for v in values))
    (root / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(ATTRS) + "\n" + "\n".join(rows) + "\n")
    return root


def tiny_stargan_weights(path: Path) -> Path:
    from stargan_app.checkpoint import save_weights
    from stargan_app.config import StarGANConfig
    from stargan_app.models import Discriminator, Generator

    torch.manual_seed(0)
    cfg = StarGANConfig(image_size=32, conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=4)
    save_weights(path, "stargan", cfg, {"G": Generator(cfg), "D": Discriminator(cfg)})
    return path


def test_eval_stargan_synthetic(tmp_path, monkeypatch, capsys):
    from stargan_app.evaluation import stargan as ev
    from stargan_app.face.detect import DetectedFace, FaceDetector

    torch.set_num_threads(1)
    monkeypatch.setattr(ev, "CLASSIFIER_EPOCHS", 1)
    monkeypatch.setattr(ev, "CLASSIFIER_VALIDATION", 8)

    def centre_face(self, img):  # synthetic noise has no face: put one where CelebA geometry has it
        return [DetectedFace((20, 30, 70, 90), [[35, 50], [55, 50], [45, 62], [37, 75], [53, 75]], 0.99)]

    monkeypatch.setattr(FaceDetector, "detect", centre_face)
    kwargs = dict(
        weights=str(tiny_stargan_weights(tmp_path / "w.safetensors")),
        data_dir=str(make_celeba(tmp_path / "celeba")),
        test_size=10,
        cache_dir=str(tmp_path / "cache"),
    )
    result = ev.eval_stargan(**kwargs, sheet=str(tmp_path / "sheet.png"), faces_dir=None)
    json.dumps(result)
    attrs = ATTRS[:-1]
    assert set(result["transfer_raw"]) == set(attrs) == set(result["transfer_pipeline"])
    assert all(0.0 <= v <= 1.0 for v in result["transfer_pipeline"].values() if v == v)
    assert result["test_faces"] == 10 and result["pipeline_no_face"] == 0
    assert result["summary"]["reconstruction_l1"] > 0.0 and result["summary"]["fd_pipeline"] >= 0.0
    assert not result["judge"]["cached"]
    out = capsys.readouterr().out
    assert "Eyeglasses" in out and "summary:" in out
    from PIL import Image as PILImage

    sheet = PILImage.open(tmp_path / "sheet.png")
    assert sheet.size == (256 * 7, 24 + 280 * 2)  # input + 6 edits; the two example portraits in assets/
    again = ev.eval_stargan(**kwargs)
    assert again["judge"]["cached"] and again["transfer_raw"] == result["transfer_raw"]


def test_thresholds_meet_recall_and_specificity_on_separable_scores():
    from stargan_app.evaluation.stargan import recall_specificity, tune_thresholds

    gen = torch.Generator().manual_seed(0)
    truth = (torch.rand(400, 3, generator=gen) < torch.tensor([0.5, 0.1, 0.03])).float()
    logits = truth * 2.0 + torch.randn(400, 3, generator=gen) * 0.6 - 5.0  # rare positives, shifted scores
    recall, spec = recall_specificity(logits > tune_thresholds(logits, truth), truth)
    assert min(recall) >= 0.85 and min(spec) >= 0.85
    naive_recall, _ = recall_specificity(logits > 0, truth)
    assert max(naive_recall) < 0.1  # the default threshold would find none of them


def test_frechet_distance_is_zero_for_the_same_features_and_grows_with_a_shift():
    from stargan_app.evaluation.stargan import frechet_distance

    feats = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert abs(frechet_distance(feats, feats)) < 1e-6
    assert frechet_distance(feats + 1.0, feats) == pytest.approx(8.0, rel=0.05)
    assert frechet_distance(feats * 3, feats) > frechet_distance(feats * 1.5, feats) > 0.1


def test_switch_on_faces_skips_faces_that_already_have_it():
    from stargan_app.evaluation.stargan import switch_on_faces

    truth = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    assert switch_on_faces("Blond_Hair", truth, ("Blond_Hair", "Eyeglasses")).tolist() == [False, True, True]


def write_idx(path: Path, array: np.ndarray) -> None:
    import gzip
    import struct

    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_eval_cgan_synthetic(tmp_path, monkeypatch, capsys):
    from stargan_app.checkpoint import save_weights
    from stargan_app.config import CGANConfig
    from stargan_app.models import CGANDiscriminator, CGANGenerator

    torch.set_num_threads(1)
    monkeypatch.setattr(evaluation, "CGAN_CLASSIFIER_EPOCHS", 1)
    data = tmp_path / "idx"
    data.mkdir()
    for split, n, seed in (("train", 256, 0), ("t10k", 64, 1)):
        x, y = quadrant_task(n, seed)
        write_idx(data / f"{split}-images-idx3-ubyte.gz", x.numpy())
        write_idx(data / f"{split}-labels-idx1-ubyte.gz", y.numpy())
    torch.manual_seed(0)
    cfg = CGANConfig(classes=("a", "b", "c", "d"), noise_dim=8, g_hidden=(16,), d_hidden=(16,))
    weights = tmp_path / "cgan.safetensors"
    save_weights(weights, "cgan", cfg, {"G": CGANGenerator(cfg), "D": CGANDiscriminator(cfg)})
    args = dict(dataset="mnist", weights=str(weights), data_dir=str(data), per_class=5, cache_dir=str(tmp_path / "cache"))
    result = evaluation.eval_cgan(**args)
    json.dumps(result)
    assert set(result["class_accuracy"]) == {"a", "b", "c", "d"}
    assert all(0.0 <= v <= 1.0 for v in result["class_accuracy"].values())
    assert 0.0 <= result["mean_class_accuracy"] <= 1.0
    assert result["classifier"]["test_accuracy"] > 0.5
    assert result["mean_diversity_ratio"] >= 0.0
    assert "MEAN" in capsys.readouterr().out
    assert evaluation.eval_cgan(**args)["classifier"]["cached"]
