"""The hair-colour model (inference/hair_colour.py): fitted on synthetic hair of known colour, and served hair-colour
edits recoloured on it, on the composed photos and stand-in mask model of test_person_masks."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import ROOT, FakeDetector, tiny_stargan_weights
from safetensors.torch import save_file
from test_person_masks import BACKGROUND, HAIR, HEAD, SKIN, editor, photo_of, region

from stargan_app.config import HAIR_COLOURS
from stargan_app.errors import WeightsError
from stargan_app.imaging import lab_to_srgb, srgb_to_lab
from stargan_app.inference import FaceEditor, compositing
from stargan_app.inference.compositing import NO_HAIR_MESSAGE
from stargan_app.inference.hair_colour import HAIR_COLOURS_FILE, HairColourModel, head_statistics

SPREAD = 4.0  # the synthetic hair's chroma spread about its curve
HEAD_SPREAD = (8.0, 3.0, 3.0)  # how much the synthetic heads' median L*, mean a* and mean b* vary


def known_chroma(colour: int, lightness: np.ndarray) -> np.ndarray:
    """The synthetic curve of colour number `colour`: (a*, b*) linear in L*, a different line for each colour."""
    return np.stack([0.2 * lightness - 10 * colour, -0.3 * lightness + 15 * colour], -1)


def synthetic_model(colours: tuple[str, ...] = HAIR_COLOURS, seed: int = 0) -> HairColourModel:
    rng = np.random.default_rng(seed)
    samples, heads = {}, {}
    for k, colour in enumerate(colours):
        lightness = rng.uniform(10 + 10 * k, 60 + 10 * k, 200_000)
        lab = np.column_stack([lightness, known_chroma(k, lightness) + rng.normal(0, SPREAD, (len(lightness), 2))])
        samples[colour] = lab.astype(np.float32)
        heads[colour] = np.stack([head_statistics(lab[i : i + 500]) for i in range(0, len(lab), 500)])
        heads[colour] += rng.normal(0, HEAD_SPREAD, heads[colour].shape)  # real heads differ more than chunks of one
    return HairColourModel.fit(samples, heads, {"data": "synthetic"})


def test_the_model_fitted_on_synthetic_hair_gives_its_curve_spread_and_brightness_back():
    model = synthetic_model()
    for k, colour in enumerate(HAIR_COLOURS):
        inner = np.arange(15.0 + 10 * k, 56.0 + 10 * k, 5.0)  # well inside the samples' brightness range
        assert np.abs(model.chroma_at(colour, inner) - known_chroma(k, inner)).max() < 0.3
        assert np.abs(model.spread_at(colour, inner) - SPREAD).max() < 0.3
        ranks = np.array([0.1, 0.5, 0.9])
        assert np.abs(model.brightness_at(colour, ranks) - (10 + 10 * k + 50 * ranks)).max() < 0.5


def test_the_model_round_trips_and_a_file_without_metadata_or_of_other_colours_is_refused(tmp_path):
    model = synthetic_model()
    loaded = HairColourModel.load(model.save(tmp_path / "colours.safetensors"))
    assert loaded.colours == HAIR_COLOURS and np.array_equal(loaded.chroma, model.chroma)
    arrays = {name: torch.from_numpy(np.ascontiguousarray(getattr(model, name))) for name in ("brightness", "chroma")}
    save_file(arrays, str(tmp_path / "bare.safetensors"))
    with pytest.raises(WeightsError, match="not a hair-colour model"):
        HairColourModel.load(tmp_path / "bare.safetensors")
    other = synthetic_model(("Black_Hair", "Red_Hair")).save(tmp_path / "other.safetensors")
    with pytest.raises(WeightsError, match="fitted on the colours"):
        HairColourModel.load(other)
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="not a readable"):
        HairColourModel.load(tmp_path / "broken.safetensors")


def recolouring_editor(monkeypatch) -> FaceEditor:
    """The stand-in editor with the synthetic model and without G's shaping, so what the edit leaves on the hair is
    the model's colour alone."""
    monkeypatch.setattr(compositing, "G_SHAPE", 0.0)
    ed = editor(masks=True)
    ed.compositor = dataclasses.replace(ed.compositor, hair_colours=synthetic_model())
    return ed


def test_a_served_hair_edit_takes_the_target_colours_chroma_within_its_spread(monkeypatch):
    ed, photo = recolouring_editor(monkeypatch), photo_of({"origin": (100, 100)})
    hair = region(photo, HAIR)
    rows = np.nonzero(hair)[0]
    hair[int(rows.min() + 0.6 * (rows.max() - rows.min())) :] = False  # the cap's lower edge meets the soft maps
    plain = editor(masks=True).edit(photo, {"Blond_Hair": True}).image
    out = ed.edit(photo, {"Blond_Hair": True}).image
    lab = srgb_to_lab(np.asarray(out, np.float32)[hair] / 255.0)
    offset = np.abs(lab[:, 1:] - ed.compositor.hair_colours.chroma_at("Blond_Hair", lab[:, 0])).max(-1)
    plain_lab = srgb_to_lab(np.asarray(plain, np.float32)[hair] / 255.0)
    plain_offset = np.abs(plain_lab[:, 1:] - ed.compositor.hair_colours.chroma_at("Blond_Hair", plain_lab[:, 0]))
    assert np.median(plain_offset) > 3 * SPREAD  # without the model the hair is far from the blond curve
    assert np.quantile(offset, 0.9) < SPREAD  # with it, on the curve (8-bit rounding and the photo's grain aside)


def test_pixels_off_the_hair_stay_bit_exact_and_strength_zero_returns_the_photo(monkeypatch):
    ed, photo = recolouring_editor(monkeypatch), photo_of({"origin": (100, 100)})
    out = np.asarray(ed.edit(photo, {"Black_Hair": True}).image)
    moved = (out != np.asarray(photo)).any(-1)
    assert moved[region(photo, HAIR)].mean() > 0.8
    assert not moved[region(photo, BACKGROUND) | region(photo, SKIN)].any()
    same = ed.edit(photo, {"Black_Hair": True}, strength=0.0).image
    assert np.array_equal(np.asarray(same), np.asarray(photo))


def test_a_weights_file_without_a_colour_model_edits_as_before_and_one_beside_it_is_used(tmp_path):
    weights = tiny_stargan_weights(tmp_path / "tiny.safetensors")
    regions = ROOT / "weights" / "stargan_celeba.regions.safetensors"
    without = FaceEditor.from_pretrained(weights, regions=regions, person_masks=False)
    assert without.compositor.hair_colours is None
    synthetic_model().save(tmp_path / HAIR_COLOURS_FILE)
    beside = FaceEditor.from_pretrained(weights, regions=regions, person_masks=False)
    assert beside.compositor.hair_colours is not None and beside.compositor.hair_colours.info["data"] == "synthetic"
    off = FaceEditor.from_pretrained(weights, regions=regions, person_masks=False, hair_colours=False)
    assert off.compositor.hair_colours is None
    assert json.loads(json.dumps(beside.compositor.hair_colours.info))["pixels"]["Gray_Hair"] == 200_000
    photo, without.detector = photo_of({"origin": (100, 100)}), FakeDetector(size=HEAD, origin=(100, 100))
    assert without.edit(photo, {"Blond_Hair": True}).image.size == photo.size


def hair_lightness(photo, image, hair_colour) -> float:
    """Median L* of the photo's hair (the pixels of `hair_colour` in `photo`) in `image`."""
    hair = region(photo, hair_colour)
    return float(np.median(srgb_to_lab(np.asarray(image, np.float32)[hair] / 255.0)[:, 0]))


@pytest.mark.parametrize(
    "hair_colour, colour, darker",
    [((110, 110, 125), "Black_Hair", True), (HAIR, "Brown_Hair", False)],  # L* 46 to black (35), 21 to brown (55)
)
def test_a_lighter_head_asked_for_a_darker_colour_gets_darker_and_a_dark_head_asked_for_a_lighter_one_lighter(
    monkeypatch, hair_colour, colour, darker
):
    ed = recolouring_editor(monkeypatch)
    photo = photo_of({"origin": (100, 100), "hair_colour": hair_colour})
    before = hair_lightness(photo, photo, hair_colour)
    result = ed.edit(photo, {colour: True})
    after = hair_lightness(photo, result.image, hair_colour)
    assert (after < before - 5) if darker else (after > before + 5)
    assert result.message is None


def test_a_head_already_of_the_target_colour_changes_little_and_says_so():
    model, rng = synthetic_model(), np.random.default_rng(1)
    lightness = model.head_brightness("Black_Hair", rng.uniform(0, 1, 4096))  # one head of the model's black hair
    lab = np.column_stack([lightness, known_chroma(0, lightness) + rng.normal(0, SPREAD, (4096, 2))])
    photo = lab_to_srgb(lab.reshape(64, 64, 3).astype(np.float32))
    reading = model.read(srgb_to_lab(photo).reshape(-1, 3))
    assert reading.colour == "Black_Hair" and reading.in_range("Black_Hair") and not reading.in_range("Gray_Hair")
    after = model.recolour(photo, photo, np.ones((64, 64), np.float32), "Black_Hair", reading)
    change = np.linalg.norm(srgb_to_lab(after) - srgb_to_lab(photo), axis=-1)
    assert np.median(change) < 4.0  # ΔE; the same hair asked for gray moves far more
    gray = model.recolour(photo, photo, np.ones((64, 64), np.float32), "Gray_Hair", reading)
    assert np.median(np.linalg.norm(srgb_to_lab(gray) - srgb_to_lab(photo), axis=-1)) > 3 * np.median(change)


def test_a_head_with_no_hair_showing_is_left_bit_for_bit_and_the_result_says_so(monkeypatch):
    ed = recolouring_editor(monkeypatch)
    photo = photo_of({"origin": (100, 100), "hair": False})  # a shaved head: skin up to the crown
    result = ed.edit(photo, {"Blond_Hair": True})
    assert np.array_equal(np.asarray(result.image), np.asarray(photo)) and result.message == NO_HAIR_MESSAGE
