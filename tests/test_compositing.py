"""Composition of an edit into the photo: box filter, guided filter, region gate, guided paste-back, and the editor
with and without region maps (tiny random models, synthetic photos, CPU)."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_STARGAN, FakeDetector, celeba_landmarks, tiny_stargan, tiny_stargan_weights
from PIL import Image

from stargan_app.config import LabelSchema
from stargan_app.face.align import FacePaster, align_face, footprint, view_matrix
from stargan_app.imaging import elliptical_window, gaussian_blur, pil_to_tensor, tensor_to_pil
from stargan_app.inference import FaceEditor
from stargan_app.inference.compositing import (
    GUIDED_RADIUS,
    Compositor,
    FaceCanvas,
    RegionMaps,
    box_mean,
    changed_attributes,
    guided_filter,
)
from stargan_app.labels import edit_passes

SCHEMA = LabelSchema()
SIZE = TINY_STARGAN.image_size


def test_box_mean_is_the_clipped_window_mean_and_exactly_zero_away_from_any_value():
    x = torch.rand(2, 20, 24, dtype=torch.float64)
    for r in (1, 3):
        expected = F.avg_pool2d(x[None], 2 * r + 1, stride=1, padding=r, count_include_pad=False)[0]
        torch.testing.assert_close(box_mean(x, r), expected)
    sparse = torch.zeros(1, 30, 30)
    sparse[0, 5, 5] = 1e6  # a cumulative sum carries it along the whole row, yet the far windows are exactly 0
    assert box_mean(sparse, 2)[0, 8:, :].abs().max() == 0 and box_mean(sparse, 2)[0, :, 8:].abs().max() == 0


def test_the_guided_filter_keeps_what_is_linear_in_the_guide_and_smooths_what_is_not():
    guide = torch.rand(3, 32, 32)
    linear = 0.3 * guide[:1] - 0.5 * guide[2:] + 0.1
    torch.testing.assert_close(guided_filter(guide, linear, 2, 1e-6), linear, atol=1e-3, rtol=0)
    noise = torch.randn(1, 32, 32)
    assert guided_filter(torch.full((3, 32, 32), 0.5), noise, 2, 1e-3).std() < 0.5 * noise.std()  # flat guide: a blur


def test_the_gate_is_the_union_of_the_edited_attributes_regions_and_the_ellipse_without_maps():
    blond, glasses = torch.zeros(SIZE, SIZE), torch.zeros(SIZE, SIZE)
    blond[2:10], glasses[12:16] = 1.0, 0.7
    compositor = Compositor(RegionMaps({"Blond_Hair": blond, "Eyeglasses": glasses}))
    torch.testing.assert_close(compositor.gate(["Blond_Hair", "Eyeglasses"], SIZE), torch.maximum(blond, glasses))
    torch.testing.assert_close(
        compositor.gate(["Blond_Hair", "Bangs"], SIZE), torch.maximum(blond, elliptical_window(SIZE, 0.8))
    )
    torch.testing.assert_close(
        compositor.gate(["Blond_Hair"], 2 * SIZE)[5:19].mean(), torch.tensor(1.0), atol=0.02, rtol=0
    )
    assert torch.equal(Compositor().gate(["Bangs"], SIZE), elliptical_window(SIZE, 0.8))
    assert Compositor(window=0).gate(["Bangs"], SIZE) is None


def test_a_hair_colour_edit_changes_the_colour_it_switches_on_and_the_one_it_clears():
    source = {"Black_Hair": 0.9, "Bangs": 0.2}
    passes = edit_passes(SCHEMA, {"Blond_Hair": True}, source)
    assert changed_attributes(SCHEMA, passes, edit_passes(SCHEMA, {"Blond_Hair": True}, source, 0.0)) == [
        "Black_Hair",
        "Blond_Hair",
    ]
    both = {"Eyeglasses": True, "Gray_Hair": True}
    assert set(
        changed_attributes(SCHEMA, edit_passes(SCHEMA, both, source), edit_passes(SCHEMA, both, source, 0.0))
    ) == {
        "Black_Hair",
        "Gray_Hair",
        "Eyeglasses",
    }


# ---------------------------------------------------------------- the guided paste-back at a sharp edge


def edge_photo() -> Image.Image:
    """1200 x 900: dark left of column 600, bright from it on, with a little noise (a photo's grain)."""
    arr = np.where(np.arange(1200)[None, :, None] < 600, 50, 190) + np.random.default_rng(0).integers(
        -3, 4, (900, 1200, 3)
    )
    return Image.fromarray(arr.astype(np.uint8))


def edge_change(guided: bool) -> np.ndarray:
    """Row-mean change (levels, one channel) across the photo's edge, pasted from a 32 px change that is +0.4 on
    the crop's dark side and 0 on its bright side, blurred as served (so it bleeds over ~2 crop px = 40 photo px)."""
    photo = edge_photo()
    aligned = align_face(photo, celeba_landmarks(640) + [280, 130], SIZE)  # 20 photo px per crop px
    x = pil_to_tensor(aligned.crop)
    edge = int(round(aligned.matrix[0] @ [600, 450, 1]))  # the photo's edge in crop columns
    assert edge == 16
    change = torch.zeros(3, SIZE, SIZE)
    change[:, :, :edge] = 0.4
    change = gaussian_blur(change[None], 0.6)[0]
    compositor = Compositor(guided=guided)
    out = compositor.paste_change(FaceCanvas(photo, aligned.matrix, aligned.crop.size), change, x * 0, x)
    diff = np.asarray(out, np.float64) - np.asarray(photo, np.float64)
    return diff[350:550, :, 0].mean(0)


def test_the_guided_change_stops_within_two_photo_pixels_of_a_sharp_edge():
    full = 0.4 * 127.5
    guided, plain = edge_change(True), edge_change(False)
    assert guided[560:598].min() > 0.8 * full  # the dark side keeps its change right up to the edge
    assert np.abs(guided[602:640]).max() < 0.1 * full  # and it stops within two photo pixels past it
    assert plain[602:640].max() > 0.3 * full  # the plain warp bleeds across (what the filter is for)


# ---------------------------------------------------------------- the editor with region maps


def band_maps(rows: slice) -> RegionMaps:
    """Every attribute lives on the same band of crop rows (1 there, 0 elsewhere)."""
    band = torch.zeros(SIZE, SIZE)
    band[rows] = 1.0
    return RegionMaps({a: band for a in SCHEMA.attributes})


def random_photo(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (480, 640, 3), dtype=np.uint8))


def crop_rows_of_photo(editor: FaceEditor, photo: Image.Image) -> np.ndarray:
    """(H, W) crop row (continuous) of every photo pixel centre under the editor's alignment of face 0."""
    matrix = editor.prepare(photo).aligned.matrix
    ys, xs = np.mgrid[0 : photo.height, 0 : photo.width] + 0.5
    return matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]


@pytest.mark.parametrize("guided", [True, False])
@pytest.mark.parametrize("output", ["image", "residual"])
def test_pixels_outside_the_gated_footprint_stay_bit_exact(guided, output):
    G, D = tiny_stargan(dataclasses.replace(TINY_STARGAN, output=output))
    editor = FaceEditor(G, D, detector=FakeDetector(), regions=band_maps(slice(4, 10)), guided=guided)
    photo = random_photo()
    changed = (
        np.abs(np.asarray(editor.edit(photo, {"Black_Hair": True}).image, int) - np.asarray(photo, int)).max(2) > 0
    )
    rows = crop_rows_of_photo(editor, photo)
    reach = 2 * GUIDED_RADIUS + 2  # the filter's two box passes, and the bilinear/bicubic samples around them
    assert changed[(rows > 4) & (rows < 10)].mean() > 0.3  # the band is edited
    assert not changed[(rows < 4 - reach) | (rows > 10 + reach)].any()  # nothing outside it moves


def test_the_crop_after_the_edit_and_the_preview_grid_show_the_gated_change():
    editor = FaceEditor(*tiny_stargan(), detector=FakeDetector(), regions=band_maps(slice(4, 10)))
    photo = random_photo()
    prep = editor.prepare(photo)
    before, after = np.asarray(prep.aligned.crop, int), np.asarray(editor.edit(prep, {"Bangs": True}).face_after, int)
    assert (before[12:] == after[12:]).all() and (before[4:10] != after[4:10]).any()
    grid = np.asarray(editor.preview_grid(prep), int)  # tiles of 32 px, 2 px apart, the input first
    for k in range(1, 10):
        tile = grid[2 : 2 + SIZE, 2 + k * (SIZE + 2) : 2 + k * (SIZE + 2) + SIZE]
        assert (tile[12:] == before[12:]).all(), k


def test_an_old_weights_file_without_maps_loads_and_edits_as_before(tmp_path):
    """No maps beside the file: the ellipse and the plain warp of the blurred change, exactly as before maps existed."""
    editor = FaceEditor.from_pretrained(tiny_stargan_weights(tmp_path / "old.safetensors"))
    editor.detector = FakeDetector()
    assert editor.regions is None and not editor.guided
    photo = random_photo(1)
    prep = editor.prepare(photo)
    result = editor.edit(prep, {"Blond_Hair": True})
    (c,), (c_src,) = (edit_passes(SCHEMA, {"Blond_Hair": True}, prep.attributes, s) for s in (1.0, 0.0))
    with torch.no_grad():
        edited, reference = editor.G(prep.tensor, c[None]), editor.G(prep.tensor, c_src[None])
    change = gaussian_blur(edited - reference, 0.6) * elliptical_window(SIZE, 0.8)
    expected = FacePaster(photo, prep.aligned.matrix, (SIZE, SIZE)).paste(
        tensor_to_pil(reference[0] + change[0]), reference_crop=tensor_to_pil(reference[0])
    )
    assert np.array_equal(np.asarray(result.image), np.asarray(expected))


def test_old_keyword_arguments_still_work_and_maps_can_be_turned_off(tmp_path):
    weights = tiny_stargan_weights(tmp_path / "w.safetensors")
    band_maps(slice(4, 10)).save(tmp_path / "w.regions.safetensors")
    editor = FaceEditor.from_pretrained(weights, change_smoothing=1.0, change_window=0.6)
    assert (
        (editor.change_smoothing, editor.change_window) == (1.0, 0.6) and editor.regions is not None and editor.guided
    )
    editor.change_window = 0.0  # assignable, as the attributes they were
    assert editor.compositor.window == 0.0
    assert not FaceEditor.from_pretrained(weights, guided=False).guided
    assert FaceEditor.from_pretrained(weights, regions=False).regions is None
    photo = random_photo()
    for keep_detail in (True, False):  # the raw-output paste ignores the maps, as before
        a = FaceEditor(*tiny_stargan(), detector=FakeDetector(), regions=band_maps(slice(4, 10)))
        b = FaceEditor(*tiny_stargan(), detector=FakeDetector())
        same = np.array_equal(
            np.asarray(a.edit(photo, {"Bangs": True}, keep_detail=keep_detail).image),
            np.asarray(b.edit(photo, {"Bangs": True}, keep_detail=keep_detail).image),
        )
        assert same == (not keep_detail)


# ---------------------------------------------------------------- geometry


def test_a_view_pixel_maps_to_the_crop_point_of_the_photo_pixel_it_shows():
    matrix = np.array([[0.1, 0.02, -5.0], [-0.02, 0.1, -3.0]])
    box, size = (100, 60, 400, 360), 150  # 300 photo px shown in 150 view px
    m = view_matrix(matrix, box, size)
    view_point, photo_point = np.array([30.5, 70.5, 1.0]), np.array([100 + 61.0, 60 + 141.0, 1.0])
    np.testing.assert_allclose(m @ view_point, matrix @ photo_point)
    full = footprint(matrix, (0, 0, 32, 32), (10_000, 10_000), margin=0)
    part = footprint(matrix, (0, 0, 16, 32), (10_000, 10_000), margin=0)
    assert full[0] <= part[0] and part[2] < full[2] and (part[1], part[3]) != (None, None)
