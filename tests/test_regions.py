"""Region maps: estimated from (synthetic) CelebA, stored beside the weights, loaded by FaceEditor; the shipped maps."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_CELEBA, WEIGHTS, make_celeba, needs_weights, tiny_stargan_weights
from PIL import Image

from stargan_app.cli import main
from stargan_app.data.celeba import read_celeba_attributes
from stargan_app.errors import WeightsError
from stargan_app.evaluation.regions import estimate_regions, regions_sheet
from stargan_app.inference import FaceEditor
from stargan_app.inference.compositing import RegionMaps, find_regions, regions_path

HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")


def inner_face(size: int) -> tuple[slice, slice]:
    """Rows 35-80% and columns 25-75% of the detector's face box, which lies at x 0.24-0.72, y 0.27-0.90 of the
    aligned crop (measured on the four licensed portraits)."""
    return slice(round(0.48 * size), round(0.78 * size)), slice(round(0.35 * size), round(0.62 * size))


def hair_ring(size: int) -> np.ndarray:
    """Above and beside the face in the crop: an upper annulus around its centre."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    r = np.hypot(xs / size - 0.5, ys / size - 0.5)
    return (r > 0.32) & (r < 0.45) & (ys / size < 0.6)


@pytest.fixture(scope="module")
def blond_celeba(tmp_path_factory) -> Path:
    """A synthetic CelebA (make_celeba's labels) in which Blond_Hair faces have bright hair on the ring around
    the face and every other face dark hair there; the inner face and the background are noise for all."""
    root = make_celeba(tmp_path_factory.mktemp("celeba"), n=160, p_on=0.3)
    files, names, values = read_celeba_attributes(root)
    rng = np.random.default_rng(1)
    ring = hair_ring(89)
    for name, row in zip(files, values):
        img = rng.integers(0, 255, (109, 89, 3)).astype(np.int16)
        hair = (225, 200, 90) if row[names.index("Blond_Hair")] else (50, 35, 25)
        crop = img[10:99]  # the centre square training reads
        crop[ring] = np.array(hair) + rng.integers(-20, 20, (int(ring.sum()), 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "img_align_celeba" / name, quality=95)
    return root


@pytest.fixture(scope="module")
def blond_maps(blond_celeba) -> RegionMaps:
    maps, _ = estimate_regions(blond_celeba, ("Blond_Hair", "Bangs"), 32, test_size=10)
    return maps


def test_the_hair_map_is_near_zero_on_the_inner_face_and_high_on_the_ring(blond_maps):
    m = blond_maps.maps["Blond_Hair"].numpy()
    assert m.shape == (32, 32) and 0.0 <= m.min() and m.max() <= 1.0
    assert m[inner_face(32)].max() < 0.05
    assert m[hair_ring(32)].mean() > 0.7


def test_an_attribute_with_no_consistent_difference_gets_an_all_but_empty_map(blond_maps):
    assert blond_maps.maps["Bangs"].mean() < 0.1  # Bangs labels are random here


def test_region_maps_round_trip_and_sit_beside_their_weights(tmp_path, blond_maps):
    weights = tiny_stargan_weights(tmp_path / "w.safetensors")
    assert regions_path(weights) == tmp_path / "w.regions.safetensors"
    assert find_regions(weights) is None  # no maps beside it
    blond_maps.save(regions_path(weights))
    loaded = find_regions(weights)
    assert set(loaded.maps) == {"Blond_Hair", "Bangs"} and torch.equal(
        loaded.maps["Blond_Hair"], blond_maps.maps["Blond_Hair"]
    )
    assert loaded.info["data"].startswith(blond_maps.info["data"][:10]) and loaded.info["path"].endswith(
        "w.regions.safetensors"
    )
    assert find_regions(weights, False) is None
    elsewhere = blond_maps.save(tmp_path / "other" / "maps.safetensors")
    assert set(find_regions(weights, elsewhere).maps) == {"Blond_Hair", "Bangs"}


def test_an_unreadable_region_file_is_refused(tmp_path):
    bad = tmp_path / "w.regions.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="region-maps"):
        RegionMaps.load(bad)


def test_build_regions_writes_the_maps_beside_the_weights_and_the_editor_uses_them(tmp_path, blond_celeba):
    weights = tiny_stargan_weights(tmp_path / "w.safetensors")
    sheet = tmp_path / "regions.png"
    args = ["build-regions", "--weights", str(weights), "--data-dir", str(blond_celeba), "--test-size", "10"]
    assert main(args + ["--sheet", str(sheet)]) == 0
    editor = FaceEditor.from_pretrained(weights)
    assert editor.regions is not None and editor.guided and len(editor.regions.maps) == 9
    assert editor.regions.maps["Blond_Hair"].shape == (32, 32) and editor.info["regions"] == str(regions_path(weights))
    with Image.open(sheet) as im:
        assert im.size[0] == 9 * 128
    off = FaceEditor.from_pretrained(weights, regions=False)
    assert off.regions is None and not off.guided


def test_regions_sheet_is_one_labelled_tile_per_attribute(tmp_path, blond_maps):
    out = regions_sheet(blond_maps, tmp_path / "s.png", tile=64, mean_face=torch.full((3, 32, 32), 0.5))
    with Image.open(out) as im:
        assert im.size == (2 * 64, 64 + 18)


# ---------------------------------------------------------------- the shipped maps and the real data


@needs_weights("stargan_celeba.regions.safetensors")
def test_the_shipped_maps_have_the_expected_shapes():
    maps = RegionMaps.load(WEIGHTS / "stargan_celeba.regions.safetensors").maps
    size = next(iter(maps.values())).size(0)
    inner, ring = inner_face(size), torch.from_numpy(hair_ring(size))
    for a in HAIR:
        assert maps[a][inner].max() < 0.05, a  # never the inner face
    for a in ("Black_Hair", "Blond_Hair"):  # black hair is often short: lower on the ring's sides
        assert maps[a][ring].mean() > 0.45, a
    rows = lambda a: (maps[a] > 0.5).nonzero()[:, 0].float().mean() / size  # noqa: E731 (mean row of the region)
    eyes, mouth = 65.4 / 128, 95.3 / 128  # CelebA's reference points
    assert abs(rows("Eyeglasses") - eyes) < 0.06 and rows("Bangs") < eyes - 0.1 and rows("Wearing_Hat") < eyes - 0.1
    assert eyes < rows("Mustache") < mouth
    assert (maps["Eyeglasses"] > 0.5).float().mean() < 0.1 and (maps["Mustache"] > 0.5).float().mean() < 0.03


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_CELEBA.is_dir(), reason="../shared/data/celeba-10k not present")
@needs_weights("stargan_celeba.safetensors", "stargan_celeba.regions.safetensors")
def test_the_shipped_maps_are_what_build_regions_makes_of_the_training_ids(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "maps.safetensors"
    assert main(["build-regions", "--data-dir", str(SHARED_CELEBA), "--out", str(out)]) == 0
    built, shipped = RegionMaps.load(out).maps, RegionMaps.load(WEIGHTS / "stargan_celeba.regions.safetensors").maps
    assert set(built) == set(shipped)
    for a in built:
        torch.testing.assert_close(built[a], shipped[a], atol=1e-4, rtol=0)
