"""Fast tests of the evaluation helpers, `eval stargan` and `eval cgan` on synthetic data (tiny models, CPU)."""

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import pytest
import torch
from conftest import (
    CELEBA_COLUMNS,
    TINY_STARGAN,
    FakeDetector,
    make_celeba,
    tiny_guide_weights,
    tiny_stargan,
    tiny_stargan_weights,
    write_idx,
)
from PIL import Image

from stargan_app.checkpoint import save_weights
from stargan_app.config import CGANConfig, LabelSchema
from stargan_app.evaluation import cgan as cgan_eval
from stargan_app.evaluation import classifier
from stargan_app.evaluation import stargan as stargan_eval
from stargan_app.evaluation.stargan import frechet_distance, recall_specificity, switch_on_faces, tune_thresholds
from stargan_app.face.align import celeba_center_crop
from stargan_app.face.detect import FaceDetector
from stargan_app.imaging import pil_to_tensor, to_model_range
from stargan_app.inference import ClassSampler
from stargan_app.models import CGANDiscriminator, CGANGenerator

ATTRIBUTES = LabelSchema().attributes
TEST_SIZE = 10  # held-out faces of the 30 in the synthetic CelebA


def quadrant_images(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """uint8 (n,28,28) noise images with the quadrant of each label (0..3, row-major) bright."""
    images = torch.randint(0, 60, (len(labels), 28, 28), generator=gen, dtype=torch.uint8)
    for i, k in enumerate(labels.tolist()):
        r, c = divmod(k, 2)
        images[i, r * 14 : (r + 1) * 14, c * 14 : (c + 1) * 14] += 180
    return images


def quadrant_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n quadrant images with random labels: a 4-class task a small CNN separates."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    return quadrant_images(labels, g), labels


# ---------------------------------------------------------------- the reference classifier


@pytest.fixture(scope="module")
def quadrant_classifier():
    torch.set_num_threads(1)
    x, y = quadrant_task(512, 0)
    return cgan_eval.train_digit_classifier(x, y, epochs=2, seed=0)


def test_classifier_learns_separable_task(quadrant_classifier):
    x, y = quadrant_task(200, 1)
    assert cgan_eval.class_accuracy(quadrant_classifier, x, y) > 0.9


def test_diversity_ratio_of_one_repeated_image_is_zero(quadrant_classifier):
    real, labels = quadrant_task(200, 2)
    same = real[:1].repeat(len(real), 1, 1)
    same_labels = labels[:1].repeat(len(real))
    ratio, per_class = cgan_eval.diversity_ratio(quadrant_classifier, same, same_labels, real, labels)
    assert ratio == pytest.approx(0.0, abs=1e-6) and len(per_class) == 1


def test_diversity_ratio_of_other_real_images_is_about_one(quadrant_classifier):
    real, labels = quadrant_task(200, 2)
    other, other_labels = quadrant_task(200, 3)
    ratio, per_class = cgan_eval.diversity_ratio(quadrant_classifier, other, other_labels, real, labels)
    assert set(per_class) == {0, 1, 2, 3}
    assert ratio == pytest.approx(1.0, abs=0.15)


def test_classifier_cache_roundtrip(tmp_path, quadrant_classifier):
    path = tmp_path / "c.pt"
    model, cached = classifier.cached_classifier(path, lambda: quadrant_classifier, lambda: classifier.SmallCNN(1, 4))
    assert not cached and path.is_file()
    again, cached = classifier.cached_classifier(
        path, lambda: pytest.fail("retrained"), lambda: classifier.SmallCNN(1, 4)
    )
    x, _ = quadrant_task(16, 4)
    assert cached and torch.equal(classifier.predict_logits(again, x), classifier.predict_logits(model, x))


# ---------------------------------------------------------------- judge statistics


def test_thresholds_meet_recall_and_specificity_on_separable_scores():
    gen = torch.Generator().manual_seed(0)
    truth = (torch.rand(400, 3, generator=gen) < torch.tensor([0.5, 0.1, 0.03])).float()
    logits = truth * 2.0 + torch.randn(400, 3, generator=gen) * 0.6 - 5.0  # rare positives, shifted scores
    recall, spec = recall_specificity(logits > tune_thresholds(logits, truth), truth)
    assert min(recall) >= 0.85 and min(spec) >= 0.85
    naive_recall, _ = recall_specificity(logits > 0, truth)
    assert max(naive_recall) < 0.1  # the default threshold would find none of them


def test_a_perfect_judge_has_recall_and_specificity_one_and_its_opposite_zero():
    truth = (torch.rand(50, 4, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    assert recall_specificity(truth > 0.5, truth) == ([1.0] * 4, [1.0] * 4)
    assert recall_specificity(truth < 0.5, truth) == ([0.0] * 4, [0.0] * 4)


def test_tuned_thresholds_separate_perfectly_separable_scores():
    truth = (torch.rand(200, 3, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    logits = (
        truth * 10.0 + 3.0 + torch.rand(200, 3, generator=torch.Generator().manual_seed(2))
    )  # 13..14 and 3..4: no cut at 0
    assert recall_specificity(logits > tune_thresholds(logits, truth), truth) == ([1.0] * 3, [1.0] * 3)


def test_frechet_distance_is_zero_for_the_same_features():
    feats = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert abs(frechet_distance(feats, feats)) < 1e-6


def test_frechet_distance_of_a_mean_shift_is_its_squared_length():
    feats = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(feats + 1.0, feats) == pytest.approx(8.0, rel=0.05)


def test_frechet_distance_grows_with_the_spread():
    feats = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(feats * 3, feats) > frechet_distance(feats * 1.5, feats) > 0.1


def test_switch_on_faces_skips_faces_that_already_have_it():
    truth = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    assert switch_on_faces("Blond_Hair", truth, ("Blond_Hair", "Eyeglasses")).tolist() == [False, True, True]


# ---------------------------------------------------------------- eval stargan on a synthetic CelebA


@pytest.fixture(scope="module")
def celeba(tmp_path_factory) -> Path:
    return make_celeba(tmp_path_factory.mktemp("celeba"), n=30, p_on=0.4)


@pytest.fixture(scope="module")
def eval_stargan(celeba, tmp_path_factory):
    """eval_stargan(weights) on the synthetic CelebA: a one-epoch judge, cached for the module; the noise images
    get a face where CelebA geometry has it (the centre square of the 89x109 image)."""
    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("eval_cache")
    detector = FakeDetector(size=89, origin=(0, 10))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stargan_eval, "CLASSIFIER_EPOCHS", 1)
        mp.setattr(stargan_eval, "CLASSIFIER_VALIDATION", 8)
        mp.setattr(FaceDetector, "detect", lambda self, img: detector.detect(img))

        def run(weights: Path, **kwargs) -> dict:
            return stargan_eval.eval_stargan(
                str(weights), str(celeba), test_size=TEST_SIZE, cache_dir=str(cache), **kwargs
            )

        yield run


@pytest.fixture(scope="module")
def random_g_eval(eval_stargan, tmp_path_factory) -> dict:
    """The tiny random StarGAN's evaluation, with its contact sheet and printed tables."""
    tmp = tmp_path_factory.mktemp("random_g")
    weights, sheet = tiny_stargan_weights(tmp / "w.safetensors"), tmp / "sheet.png"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = eval_stargan(weights, sheet=str(sheet), faces_dir=None)
    return {"result": result, "weights": weights, "sheet": sheet, "stdout": out.getvalue()}


def test_eval_stargan_reports_every_attribute_for_every_held_out_face(random_g_eval):
    result = random_g_eval["result"]
    json.dumps(result)
    assert (
        set(result["transfer_raw"])
        == set(ATTRIBUTES)
        == set(result["transfer_pipeline"])
        == set(result["false_on_reconstruction"])
    )
    assert all(0.0 <= v <= 1.0 for v in result["transfer_pipeline"].values() if v == v)
    for key in ("robust_transfer_pipeline", "colour_implausible_pipeline", "kid_pipeline"):
        assert set(result[key]) == set(ATTRIBUTES), key
    assert all(0.0 <= v <= 1.0 for v in result["robust_transfer_pipeline"].values() if v == v)
    assert all(0.0 <= v <= 1.0 for v in result["colour_implausible_pipeline"].values() if v == v)
    assert all({"kid_edited", "kid_unedited", "ratio"} == set(v) for v in result["kid_pipeline"].values())
    assert result["test_faces"] == TEST_SIZE and result["pipeline_no_face"] == 0
    assert result["summary"]["reconstruction_l1"] > 0.0 and result["summary"]["fd_pipeline"] >= 0.0
    assert not result["judge"]["cached"]


def test_eval_stargan_prints_its_tables(random_g_eval):
    assert "Eyeglasses" in random_g_eval["stdout"] and "summary:" in random_g_eval["stdout"]
    # the tiny file ships no region maps, so no person masks either: the header says which pipeline was judged
    assert "person/skin masks off" in random_g_eval["stdout"] and random_g_eval["result"]["person_masks"] is False


def test_eval_stargan_sheet_has_a_row_per_example_portrait(random_g_eval):
    with Image.open(random_g_eval["sheet"]) as sheet:
        assert sheet.size == (256 * (1 + len(ATTRIBUTES)), 24 + 280 * 2)  # input + every edit; the two in assets/


def test_eval_stargan_reuses_its_cached_judge(eval_stargan, random_g_eval):
    again = eval_stargan(random_g_eval["weights"])
    assert again["judge"]["cached"] and again["transfer_raw"] == random_g_eval["result"]["transfer_raw"]


def test_eval_stargan_reads_the_edits_with_a_second_robust_network_and_takes_a_regions_option(
    eval_stargan, random_g_eval, tmp_path
):
    reader = tiny_guide_weights(tmp_path / "reader.safetensors", seed=3)
    result = eval_stargan(random_g_eval["weights"], regions="off", robust_reader=str(reader))
    reading = result["robust_net_transfer_pipeline"]
    assert set(reading) == set(ATTRIBUTES) and all(0.0 <= v <= 1.0 for v in reading.values() if v == v)
    assert {"hair_robust_net", "others_robust_net"} <= set(result["summary"]) and result["regions"] is None
    assert result["robust_reader"]["sha256"] and result["guides"] == []  # the tiny file was guided by nothing


def held_out_rows(celeba: Path) -> list[list[str]]:
    """The last TEST_SIZE rows of list_attr_celeba.txt: [file name, values in CELEBA_COLUMNS order]."""
    rows = [line.split() for line in (celeba / "list_attr_celeba.txt").read_text().splitlines()[2:]]
    return sorted(rows)[-TEST_SIZE:]


def test_eval_stargan_counts_the_faces_each_edit_switches_on(random_g_eval, celeba):
    rows = held_out_rows(celeba)
    expected = {a: sum(row[1 + CELEBA_COLUMNS.index(a)] == "-1" for row in rows) for a in ATTRIBUTES}
    assert random_g_eval["result"]["faces_switched_on"] == expected


def test_eval_stargan_reconstruction_l1_is_g_at_the_source_labels(random_g_eval, celeba):
    rows = held_out_rows(celeba)
    crops = []
    for row in rows:
        with Image.open(celeba / "img_align_celeba" / row[0]) as im:
            crops.append(pil_to_tensor(celeba_center_crop(im.convert("RGB"), 32)))
    x = torch.stack(crops)
    group_a = torch.tensor([[float(v == "1") for v in row[1:6]] for row in rows])  # CELEBA_COLUMNS start with group A
    c = torch.cat([group_a, torch.zeros(len(rows), 4), torch.tensor([[1.0, 0.0]]).expand(len(rows), 2)], 1)
    G, _ = tiny_stargan()  # what tiny_stargan_weights saved
    with torch.no_grad():
        expected = float((G.eval()(x, c) - x).abs().mean())
    assert random_g_eval["result"]["summary"]["reconstruction_l1"] == pytest.approx(expected, rel=1e-5)


def test_an_edit_that_changes_nothing_scores_the_judges_false_positive_rate(eval_stargan, tmp_path):
    cfg = dataclasses.replace(TINY_STARGAN, output="residual")
    G, D = tiny_stargan(cfg)
    torch.nn.init.zeros_(G.main[-1].weight)  # Δ = 0: G returns its input exactly
    result = eval_stargan(save_weights(tmp_path / "identity.safetensors", "stargan", cfg, {"G": G, "D": D}))
    assert result["summary"]["reconstruction_l1"] == 0.0
    specificity = result["judge"]["specificity"]
    # the faces an edit switches on are the judge's negatives: an unchanged face is "switched on" where the judge errs
    for a in ATTRIBUTES:
        assert result["transfer_raw"][a] == pytest.approx(1.0 - specificity[a], abs=1e-6), a
        assert result["false_on_reconstruction"][a] == pytest.approx(1.0 - specificity[a], abs=1e-6), a
        assert result["transfer_pipeline"][a] == pytest.approx(1.0 - specificity[a], abs=1e-6), a


# ---------------------------------------------------------------- eval cgan on synthetic idx files


@pytest.fixture(scope="module")
def eval_cgan(tmp_path_factory):
    """eval_cgan(per_class=5) of a tiny random 4-class cgan on quadrant idx files; a one-epoch classifier, cached
    for the module. Yields run() -> (result, printed text)."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("cgan")
    for split, n, seed in (("train", 256, 0), ("t10k", 64, 1)):
        x, y = quadrant_task(n, seed)
        write_idx(tmp / f"{split}-images-idx3-ubyte.gz", x.numpy())
        write_idx(tmp / f"{split}-labels-idx1-ubyte.gz", y.numpy())
    torch.manual_seed(0)
    cfg = CGANConfig(classes=("a", "b", "c", "d"), noise_dim=8, g_hidden=(16,), d_hidden=(16,))
    weights = save_weights(
        tmp / "cgan.safetensors", "cgan", cfg, {"G": CGANGenerator(cfg), "D": CGANDiscriminator(cfg)}
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cgan_eval, "CGAN_CLASSIFIER_EPOCHS", 1)

        def run() -> tuple[dict, str]:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                result = cgan_eval.eval_cgan("mnist", str(weights), str(tmp), per_class=5, cache_dir=str(tmp / "cache"))
            return result, out.getvalue()

        yield run


def test_eval_cgan_reports_every_class_and_caches_its_classifier(eval_cgan):
    result, printed = eval_cgan()
    json.dumps(result)
    assert set(result["class_accuracy"]) == {"a", "b", "c", "d"}
    assert all(0.0 <= v <= 1.0 for v in result["class_accuracy"].values())
    assert 0.0 <= result["mean_class_accuracy"] <= 1.0
    assert result["classifier"]["test_accuracy"] > 0.5
    assert result["mean_diversity_ratio"] >= 0.0
    assert "MEAN" in printed
    assert eval_cgan()[0]["classifier"]["cached"]


def quadrant_generator(self, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """ClassSampler.generate of a perfect generator: a fresh quadrant image of each label, (N, 1, 28, 28) in [-1, 1]."""
    return to_model_range(quadrant_images(labels, torch.Generator().manual_seed(seed + 9)))[:, None]


def test_eval_cgan_scores_a_generator_of_the_true_class_high_and_diverse(eval_cgan, monkeypatch):
    monkeypatch.setattr(ClassSampler, "generate", quadrant_generator)
    result, _ = eval_cgan()
    assert result["classifier"]["test_accuracy"] > 0.9
    assert min(result["class_accuracy"].values()) > 0.9
    assert result["mean_diversity_ratio"] == pytest.approx(1.0, abs=0.3)


def test_eval_cgan_scores_a_constant_generator_at_chance_with_no_diversity(eval_cgan, monkeypatch):
    monkeypatch.setattr(ClassSampler, "generate", lambda self, labels, seed=0: torch.zeros(len(labels), 1, 28, 28))
    result, _ = eval_cgan()
    assert sorted(result["class_accuracy"].values()) == [0.0, 0.0, 0.0, 1.0]  # every sample is read as the same class
    assert result["mean_class_accuracy"] == 0.25 and result["mean_diversity_ratio"] == 0.0
