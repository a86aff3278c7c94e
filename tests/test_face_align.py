"""Tests for stargan_app.face.align: Umeyama fit, CelebA-style crops and seamless paste-back."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from conftest import celeba_landmarks
from PIL import Image

from stargan_app.errors import NoFaceError
from stargan_app.face.align import (
    AlignedFace,
    align_face,
    celeba_reference_points,
    paste_back,
    similarity_transform,
)


def similarity(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def face_landmarks(m: np.ndarray) -> np.ndarray:
    """5 MTCNN-style landmarks of a reference face (128 px space) placed in an image by similarity m."""
    return apply(m, celeba_landmarks(128))


def blob_image(size: tuple[int, int], centre: np.ndarray, sigma: float) -> Image.Image:
    """Gaussian blob at a continuous position (pixel centres at +0.5), grey background."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    blob = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    arr = (40 + 215 * blob).round().astype(np.uint8)
    return Image.fromarray(np.repeat(arr[..., None], 3, axis=2))


def centroid(crop: Image.Image) -> np.ndarray:
    arr = np.asarray(crop, dtype=np.float64)[..., 0] - 40.0
    arr[arr < 20] = 0.0
    ys, xs = np.mgrid[0 : arr.shape[0], 0 : arr.shape[1]] + 0.5
    return np.array([(xs * arr).sum(), (ys * arr).sum()]) / arr.sum()


def smooth_image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for _ in range(3):
        fx, fy, ph = (
            rng.uniform(0.005, 0.02),
            rng.uniform(0.005, 0.02),
            rng.uniform(0, 6),
        )
        chans.append(128 + 100 * np.sin(xs * fx + ph) * np.cos(ys * fy))
    return Image.fromarray(np.clip(np.stack(chans, -1), 0, 255).round().astype(np.uint8))


@pytest.fixture(scope="module")
def photo_12mp() -> Image.Image:
    return smooth_image(800, 600).resize((4000, 3000), Image.Resampling.BILINEAR)


# ---------------------------------------------------------------- similarity_transform


def test_reference_points_scale():
    ref = celeba_reference_points(128)
    assert ref.shape == (3, 2)
    assert np.allclose(ref, [[50.2, 65.4], [77.1, 65.4], [63.6, 95.3]])
    assert np.allclose(celeba_reference_points(256), 2 * ref)


def test_similarity_transform_recovers_random_similarities():
    rng = np.random.default_rng(0)
    for _ in range(200):
        truth = similarity(
            rng.uniform(-math.pi, math.pi),
            10 ** rng.uniform(-2, 2),
            *rng.uniform(-2000, 2000, 2),
        )
        src = celeba_reference_points(128) + rng.normal(0, 30, (3, 2))
        fitted = similarity_transform(src, apply(truth, src))
        assert fitted.shape == (2, 3)
        assert np.allclose(fitted, truth, atol=1e-6, rtol=1e-6)


def test_similarity_transform_least_squares_on_many_points():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (20, 2))
    truth = similarity(0.3, 1.7, 5, -4)
    fitted = similarity_transform(src, apply(truth, src) + rng.normal(0, 0.01, (20, 2)))
    assert np.allclose(fitted, truth, atol=0.01)


def test_similarity_transform_never_reflects():
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    dst = src * [-1.0, 1.0]  # a mirror image: the best similarity is not a reflection
    m = similarity_transform(src, dst)
    assert np.linalg.det(m[:, :2]) > 0


@pytest.mark.parametrize(
    "src",
    [
        np.zeros((3, 2)),
        np.full((3, 2), 1e6),
        np.array([[1.0, 2.0], [np.nan, 3.0], [4.0, 5.0]]),
        np.array([[1.0, 2.0], [np.inf, 3.0], [4.0, 5.0]]),
        np.array([[1e300, -1e300], [-1e300, 1e300], [0.0, 0.0]]),
    ],
    ids=["coincident", "coincident-far", "nan", "inf", "overflow"],
)
def test_similarity_transform_degenerate(src):
    with pytest.raises(NoFaceError, match="degenerate"):
        similarity_transform(src, celeba_reference_points(128))


# ---------------------------------------------------------------- align_face


@pytest.mark.parametrize(
    ("angle", "scale", "size"),
    [
        (0.0, 1.0, 128),
        (0.3, 2.5, 128),
        (-0.6, 0.6, 256),
        (math.pi, 1.3, 128),
        (0.2, 7.0, 128),
        (0.1, 0.3, 128),
    ],
    ids=[
        "identity",
        "big-rotated",
        "small",
        "upside-down",
        "huge-face-reduced",
        "tiny-face-upsampled",
    ],
)
def test_align_face_puts_eye_at_reference(angle, scale, size):
    place = similarity(angle, scale, 0, 0)
    # Centre the face in a canvas large enough for its footprint.
    centre = apply(place, np.array([[64.0, 64.0]]))[0]
    canvas = int(128 * scale * 1.6) + 20
    place[:, 2] = canvas / 2 - centre
    lm = face_landmarks(place)
    img = blob_image((canvas, canvas), lm[0], sigma=2.0 * scale)
    aligned = align_face(img, lm, size)
    assert isinstance(aligned, AlignedFace)
    assert aligned.size == size
    assert aligned.crop.size == (size, size) and aligned.crop.mode == "RGB"
    assert aligned.matrix.shape == (2, 3)
    ref = celeba_reference_points(size)
    mouth = (lm[3] + lm[4]) / 2
    assert np.allclose(apply(aligned.matrix, np.array([lm[0], lm[1], mouth])), ref, atol=1e-6)
    assert np.linalg.norm(centroid(aligned.crop) - ref[0]) < 1.5


def test_align_face_accepts_other_modes_and_lists():
    lm = face_landmarks(similarity(0.0, 1.0, 10, 10))
    img = Image.new("L", (160, 160), 90)
    aligned = align_face(img, lm.tolist(), 64)
    assert aligned.crop.mode == "RGB" and aligned.crop.size == (64, 64)
    assert aligned.crop.getpixel((32, 32)) == (90, 90, 90)


def test_align_face_is_fast_on_12_megapixels(photo_12mp):
    img = photo_12mp
    lm = face_landmarks(similarity(0.1, 8.0, 1500, 900))  # a ~1000 px face
    align_face(img, lm, 256)
    start = time.perf_counter()
    aligned = align_face(img, lm, 256)
    assert time.perf_counter() - start < 0.5  # typically a few ms; loose for loaded CI machines
    assert aligned.crop.size == (256, 256)


@pytest.mark.parametrize(
    "lm",
    [
        np.zeros((5, 2)),
        np.full((5, 2), 123.0),
        np.full((5, 2), np.nan),
        np.array([[10, 10], [np.inf, 10], [15, 15], [10, 20], [20, 20]], dtype=float),
        np.array([[10, 10], [10, 10], [99, 99], [10, 10], [10, 10]], dtype=float),
    ],
    ids=["zeros", "coincident", "nan", "inf", "eyes-and-mouth-coincide"],
)
def test_align_face_degenerate_landmarks(lm):
    with pytest.raises(NoFaceError):
        align_face(Image.new("RGB", (100, 100)), lm, 128)


def test_align_face_outside_image_or_sub_pixel():
    img = Image.new("RGB", (100, 100))
    with pytest.raises(NoFaceError):
        align_face(img, face_landmarks(similarity(0.0, 1.0, 5000, 5000)), 128)
    with pytest.raises(NoFaceError):
        align_face(img, face_landmarks(similarity(0.0, 1e-4, 50, 50)), 128)


def test_align_face_rejects_wrong_shape():
    with pytest.raises(ValueError):
        align_face(Image.new("RGB", (100, 100)), np.zeros((3, 2)), 128)


# ---------------------------------------------------------------- paste_back


def crop_footprint(matrix: np.ndarray, size: tuple[int, int], lo: float, hi: float) -> np.ndarray:
    """Boolean mask of image pixels whose centres map into [lo, hi)^2 of the crop."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    cx = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    cy = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    return (cx >= lo) & (cx < hi) & (cy >= lo) & (cy < hi)


@pytest.mark.parametrize(
    ("angle", "scale"),
    [(0.0, 1.0), (0.25, 2.0), (-0.4, 4.5), (0.1, 0.7)],
    ids=["unit", "x2", "x4.5", "x0.7"],
)
def test_round_trip_reproduces_original(angle, scale):
    img = smooth_image(700, 600, seed=2)
    before = np.asarray(img).copy()
    lm = face_landmarks(similarity(angle, scale, 350 - 64 * scale, 300 - 64 * scale))
    aligned = align_face(img, lm, 128)
    out = paste_back(img, aligned.crop, aligned.matrix)
    assert out.size == img.size and out.mode == img.mode
    assert np.array_equal(np.asarray(img), before)  # input untouched
    arr, got = before.astype(int), np.asarray(out).astype(int)
    inside = crop_footprint(aligned.matrix, img.size, 20, 108)
    assert inside.sum() > 1000
    assert np.abs(got - arr)[inside].mean() < 8
    far = ~crop_footprint(aligned.matrix, img.size, -8, 136)
    assert np.array_equal(got[far], arr[far])


def test_paste_back_with_reference_adds_only_the_change():
    img = smooth_image(500, 400, seed=3)
    before = np.asarray(img).astype(int)
    aligned = align_face(img, face_landmarks(similarity(0.2, 2.5, 250 - 160, 200 - 160)), 64)
    blurred = aligned.crop.resize((16, 16)).resize((64, 64))  # a model that reconstructs the face badly
    same = paste_back(img, blurred, aligned.matrix, reference_crop=blurred)
    assert np.array_equal(np.asarray(same), before)  # no change asked for: the photo's own detail stays
    brighter = Image.fromarray(np.clip(np.asarray(blurred, np.int16) + 40, 0, 255).astype(np.uint8))
    out = np.asarray(paste_back(img, brighter, aligned.matrix, reference_crop=blurred)).astype(int)
    inside = crop_footprint(aligned.matrix, img.size, 16, 48)
    change = out - before
    assert 30 < change[inside].mean() <= 40  # the +40 shift arrives (less where pixels clip at 255)
    detail = np.abs(np.diff(out, axis=1))[inside[:, 1:]].mean()
    assert detail > 0.9 * np.abs(np.diff(before, axis=1))[inside[:, 1:]].mean()  # and the texture is kept
    far = ~crop_footprint(aligned.matrix, img.size, -8, 72)
    assert np.array_equal(out[far], before[far])


def test_paste_back_blends_edit_with_feathered_edge():
    img = Image.new("RGB", (400, 400), (0, 0, 0))
    aligned = align_face(img, face_landmarks(similarity(0.0, 2.0, 72, 72)), 128)
    out = np.asarray(paste_back(img, Image.new("RGB", (128, 128), (255, 255, 255)), aligned.matrix))[..., 0]
    centre = apply(
        np.linalg.inv(np.vstack([aligned.matrix, [0, 0, 1]]))[:2],
        np.array([[64.0, 64.0]]),
    )[0]
    cx, cy = int(centre[0]), int(centre[1])
    assert out[cy, cx] == 255
    row = out[cy, :].astype(int)
    lit = np.nonzero(row)[0]
    assert 0 < len(lit) < 400
    ramp = row[lit[0] : lit[0] + 40]
    assert np.all(np.diff(ramp) >= 0) and ramp[0] < 30  # smooth rise, no hard seam
    assert out[5, 5] == 0


def test_paste_back_partly_and_fully_outside():
    img = smooth_image(300, 200, seed=3)
    before = np.asarray(img).copy()
    lm = face_landmarks(similarity(0.2, 1.5, -60, -50))  # face hanging off the top-left corner
    aligned = align_face(img, lm, 128)
    out = paste_back(img, Image.new("RGB", (128, 128), (255, 0, 0)), aligned.matrix)
    got = np.asarray(out)
    assert out.size == img.size
    assert (got[..., 0] == 255).any()
    assert np.array_equal(got[150:, 250:], before[150:, 250:])
    away = aligned.matrix.copy()
    away[:, 2] -= 10_000
    assert np.array_equal(np.asarray(paste_back(img, aligned.crop, away)), before)


def test_paste_back_keeps_mode_and_feather_zero():
    img = Image.new("L", (200, 200), 0)
    aligned = align_face(img, face_landmarks(similarity(0.0, 1.0, 36, 36)), 128)
    out = paste_back(img, Image.new("RGB", (128, 128), (255, 255, 255)), aligned.matrix, feather=0.0)
    assert out.mode == "L" and out.size == (200, 200)
    assert out.getpixel((100, 100)) == 255


def test_paste_back_rejects_singular_matrix():
    with pytest.raises(ValueError):
        paste_back(Image.new("RGB", (10, 10)), Image.new("RGB", (4, 4)), np.zeros((2, 3)))


def test_paste_back_is_fast_on_12_megapixels(photo_12mp):
    img = photo_12mp
    aligned = align_face(img, face_landmarks(similarity(0.1, 5.0, 1700, 1100)), 256)
    paste_back(img, aligned.crop, aligned.matrix)
    start = time.perf_counter()
    out = paste_back(img, aligned.crop, aligned.matrix)
    assert time.perf_counter() - start < 1.0  # tens of ms normally; loose for loaded CI machines
    assert out.size == img.size
