"""Golden numbers (diffusers style): fixed inputs through a seeded tiny model, the label code, the alignment and the
paste-back, with a few output values pinned, so that a numerical regression fails even when every shape still fits.

How the literals were produced: the helpers below (generator_output, edit_passes, align_face on textured_photo(),
pasted, changed_box) were run on the code at git 6e2c18b, CPU, torch 2.14.1, Pillow 12.3, numpy 2.4; the values
were printed (floats to 6 decimals, the matrix to 10) and pasted here. Floats are checked to 1e-4, pixels and label
vectors exactly. A change meant to alter them reruns those helpers, repastes, and says so in its commit.
"""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import TINY_STARGAN
from PIL import Image

from stargan_app.config import LabelSchema
from stargan_app.face.align import FacePaster, align_face
from stargan_app.labels import edit_passes, full_label_vector
from stargan_app.models import Generator

TOL = dict(atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- the generator


def generator_output(output: str) -> torch.Tensor:
    """A seeded tiny G's output for a seeded x in [-1, 1] and c = Black_Hair on, group A."""
    torch.manual_seed(0)
    G = Generator(dataclasses.replace(TINY_STARGAN, output=output)).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    c = torch.tensor([[0.0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0]])
    with torch.no_grad():
        return G(x, c)


@pytest.mark.parametrize(
    ("output", "pixels", "mean"),
    [
        (
            "image",
            [-0.137948, 0.394028, 0.242028, -0.423589, -0.562208, -0.521506, 0.206379, 0.287529, 0.293387],
            -0.150341,
        ),
    ],
)
def test_generator_output_is_pinned(output, pixels, mean):
    out = generator_output(output)
    torch.testing.assert_close(out[0, :, 10, 10:13].flatten(), torch.tensor(pixels), **TOL)  # 3 pixels x RGB
    torch.testing.assert_close(out.mean(), torch.tensor(mean), **TOL)


# ---------------------------------------------------------------- label vectors (exact)

SCHEMA = LabelSchema()  # [Bangs, Black, Blond, Brown, Gray | Earrings, Hat, Mustache, Glasses | mask A, mask B]
SOURCE = {"Black_Hair": 0.9, "Bangs": 0.8, "Eyeglasses": 0.1}


@pytest.mark.parametrize(
    ("targets", "strength", "expected"),
    [
        ({"Blond_Hair": True}, 1.0, [[1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0]]),  # one hair colour replaces the other
        ({"Blond_Hair": True}, 0.5, [[1, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 1, 0]]),  # halfway from the source labels
        ({"Eyeglasses": True, "Wearing_Hat": False}, 1.0, [[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]]),  # group B alone
        (
            {"Gray_Hair": True, "Mustache": True},
            0.5,
            [[1, 0.5, 0, 0, 0.5, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0.5, 0, 0, 1]],
        ),
    ],
    ids=["blond", "blond-half", "group-b", "both-groups-half"],
)
def test_edit_passes_are_pinned(targets, strength, expected):
    assert [c.tolist() for c in edit_passes(SCHEMA, targets, SOURCE, strength)] == expected


def test_full_label_vector_is_pinned():
    c = full_label_vector(SCHEMA, 1, torch.tensor([[1.0, 0.0, 0.5, 1.0]]))
    assert c.tolist() == [[0, 0, 0, 0, 0, 1, 0, 0.5, 1, 0, 1]]


# ---------------------------------------------------------------- alignment and paste-back


def textured_photo() -> Image.Image:
    """256 x 256 RGB: red = x, green = y, blue a smooth ripple (resampling shows in it)."""
    ys, xs = np.mgrid[0:256, 0:256]
    blue = 128 + 100 * np.sin(xs / 5) * np.cos(ys / 7)
    return Image.fromarray(np.rint(np.stack([xs, ys, blue], -1)).astype(np.uint8))


def textured_crop() -> Image.Image:
    """64 x 64 RGB "edit": stripes of a few pixels across and down, and a flat blue."""
    ys, xs = np.mgrid[0:64, 0:64]
    stripes = np.stack([128 + 100 * np.sin(xs * 1.3), 128 + 100 * np.cos(ys * 0.9), np.full(xs.shape, 60)], -1)
    return Image.fromarray(np.rint(stripes).astype(np.uint8))


# a slightly turned face, eyes 40 px apart (crops at 64 px are a ~3x reduction)
LANDMARKS = np.array([[108.0, 120.0], [148.0, 126.0], [126.0, 142.0], [110.0, 164.0], [140.0, 168.0]])


def test_alignment_matrix_is_pinned():
    expected = [[0.339197731, 0.033808752, -15.9045137763], [-0.033808752, 0.339197731, -4.6061102107]]
    np.testing.assert_allclose(align_face(textured_photo(), LANDMARKS, 64).matrix, expected, atol=1e-6, rtol=0)


def test_aligned_crop_pixels_are_pinned():
    crop = np.asarray(align_face(textured_photo(), LANDMARKS, 64).crop)
    got = [crop[y, x].tolist() for y, x in [(0, 0), (20, 20), (32, 32), (45, 50), (63, 63)]]
    assert got == [[46, 19, 102], [98, 83, 187], [130, 122, 136], [179, 165, 123], [211, 221, 29]]


def pasted(reference: bool) -> tuple[np.ndarray, np.ndarray]:
    """(photo after the paste, before) as int arrays: textured_crop() pasted over the aligned face, or with
    reference=True only its change from a flat (128, 128, 60) reference crop (so blue keeps the photo's ripple)."""
    photo = textured_photo()
    aligned = align_face(photo, LANDMARKS, 64)
    reference_crop = Image.new("RGB", (64, 64), (128, 128, 60)) if reference else None
    out = FacePaster(photo, aligned.matrix, (64, 64)).paste(textured_crop(), reference_crop=reference_crop)
    return np.asarray(out).astype(int), np.asarray(photo).astype(int)


def changed_box(after: np.ndarray, before: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive, of the pixels the paste changed."""
    ys, xs = np.nonzero(np.abs(after - before).sum(2))
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def test_paste_back_pixels_are_pinned():
    after, _ = pasted(reference=False)
    assert [after[y, x].tolist() for y, x in [(113, 120), (80, 95), (150, 150)]] == [
        [48, 155, 60],
        [47, 105, 60],
        [230, 184, 60],
    ]
    ramp = [[36, 121, 129], [41, 122, 128], [49, 133, 120], [50, 161, 102], [160, 190, 81], [171, 207, 65]]
    assert after[121, 36:60:4].tolist() == ramp  # the feathered edge, from the photo to the crop


def test_paste_back_changed_region_is_pinned():
    assert changed_box(*pasted(reference=False)) == (33, 25, 224, 216)


def test_paste_back_of_a_change_pixels_are_pinned():
    after, _ = pasted(reference=True)
    assert [after[y, x].tolist() for y, x in [(113, 120), (80, 95), (150, 150)]] == [
        [40, 140, 210],
        [14, 57, 134],
        [252, 206, 212],
    ]
    ramp = [[36, 121, 129], [41, 122, 129], [39, 133, 128], [30, 158, 128], [109, 185, 127], [105, 200, 127]]
    assert after[121, 36:60:4].tolist() == ramp  # the change fades in over the edge; blue is the photo's own


def test_paste_back_of_a_change_changed_region_is_pinned():
    assert changed_box(*pasted(reference=True)) == (34, 26, 223, 215)
