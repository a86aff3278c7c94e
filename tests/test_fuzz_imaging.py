"""Property-based fuzzing of image loading, alignment and paste-back: only the app's own errors may escape."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from conftest import celeba_landmarks
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from stargan_app.errors import ImageError, NoFaceError
from stargan_app.face.align import AlignedFace, align_face, paste_back
from stargan_app.imaging import load_image

pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data")

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MAGIC = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF",
    b"\x00\x00\x01\x00",
]
MODES = [
    "1",
    "L",
    "P",
    "RGB",
    "RGBA",
    "CMYK",
    "YCbCr",
    "LA",
    "PA",
    "La",
    "RGBa",
    "I",
    "I;16",
    "I;16B",
    "F",
]


def encoded_samples() -> list[bytes]:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    out = []
    for fmt, im in [
        ("PNG", img),
        ("JPEG", img),
        ("GIF", img.convert("P")),
        ("BMP", img),
        ("TIFF", img),
        ("WEBP", img),
    ]:
        buf = io.BytesIO()
        im.save(buf, fmt)
        out.append(buf.getvalue())
    return out


SAMPLES = encoded_samples()


def check_loaded(data: bytes) -> None:
    try:
        out = load_image(data)
    except ImageError:
        return
    assert out.mode == "RGB"
    assert out.width >= 1 and out.height >= 1


@FUZZ
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=512))
def test_random_bytes_only_raise_image_error(magic, body):
    check_loaded(magic + body)


@FUZZ
@given(
    sample=st.sampled_from(range(len(SAMPLES))),
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    ),
    cut=st.floats(0.05, 1.0),
)
def test_mutated_images_only_raise_image_error(sample, edits, cut):
    data = bytearray(SAMPLES[sample])
    for pos, value in edits:
        data[int(pos * len(data))] = value
    check_loaded(bytes(data[: max(1, int(len(data) * cut))]))


@FUZZ
@given(
    mode=st.sampled_from(MODES),
    w=st.integers(1, 20),
    h=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_small_images_of_any_mode_become_rgb(mode, w, h, seed):
    n = len(Image.new(mode, (w, h)).tobytes())
    raw = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    im = Image.frombytes(mode, (w, h), raw)
    if mode in ("P", "PA"):
        im.info["transparency"] = 3
    out = load_image(im)
    assert out.mode == "RGB" and out.size == (w, h)


def aligned_or_none(img: Image.Image, landmarks: np.ndarray, size: int) -> AlignedFace | None:
    """align_face, or None where it answers NoFaceError (the one error it may raise: anything else fails the test)."""
    try:
        return align_face(img, landmarks, size)
    except NoFaceError:
        return None


coords = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.floats(-1e4, 1e4)


@FUZZ
@given(
    raw=st.lists(coords, min_size=10, max_size=10),
    size=st.sampled_from([16, 64, 128]),
)
@example(
    raw=[0.0, 0.0, 0.0, 3.1413136682763733e150, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], size=16
)  # scale underflow (found by CI)
def test_align_random_landmarks_returns_crop_or_no_face(raw, size):
    aligned = aligned_or_none(Image.new("RGB", (80, 60), (10, 200, 30)), np.array(raw).reshape(5, 2), size)
    if aligned is None:
        return
    assert isinstance(aligned, AlignedFace)
    assert aligned.crop.size == (size, size) and aligned.crop.mode == "RGB"
    assert np.isfinite(aligned.matrix).all()


face_geometry = st.tuples(
    st.floats(-math.pi, math.pi),  # angle
    st.floats(-6, 4),  # log10 of image px per 128-crop px
    st.floats(-300, 300),  # x offset
    st.floats(-300, 300),  # y offset
    st.floats(0.0, 40.0),  # landmark jitter
)


def landmarks_from(geometry: tuple[float, float, float, float, float], seed: int) -> np.ndarray:
    angle, log_scale, tx, ty, jitter = geometry
    s = 10.0**log_scale
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) * s
    pts = celeba_landmarks(128)
    pts = pts + np.random.default_rng(seed).normal(0.0, jitter, pts.shape)
    return pts @ rot.T + [tx, ty]


FACES = dict(
    geometry=face_geometry, seed=st.integers(0, 1000), size=st.sampled_from([16, 64, 128])
)  # for landmarks_from


@FUZZ
@given(**FACES)
def test_align_random_geometry(geometry, seed, size):
    aligned = aligned_or_none(Image.new("RGB", (120, 90), (200, 100, 50)), landmarks_from(geometry, seed), size)
    assert aligned is None or aligned.crop.size == (size, size)


@FUZZ
@given(**FACES, feather=st.floats(0.0, 0.5), mode=st.sampled_from(["RGB", "L", "RGBA"]))
def test_paste_back_with_valid_alignments_never_raises(geometry, seed, size, feather, mode):
    img = Image.new(mode, (120, 90), 77 if mode == "L" else (77, 88, 99, 255)[: len(mode)])
    aligned = aligned_or_none(img, landmarks_from(geometry, seed), size)
    if aligned is None:
        return
    edited = Image.new("RGB", (size, size), (255, 0, 255))
    out = paste_back(img, edited, aligned.matrix, feather=feather)
    assert out.size == img.size and out.mode == img.mode
    reference = Image.new("RGB", (size, size), (0, 40, 255))
    out = paste_back(img, edited, aligned.matrix, feather=feather, reference_crop=reference)
    assert out.size == img.size and out.mode == img.mode
    assert img.getpixel((0, 0)) == (77 if mode == "L" else (77, 88, 99, 255)[: len(mode)])


@pytest.mark.parametrize("edge", [0.0, 1e-300, 1e300, -1e300])
def test_extreme_coordinates(edge):
    lm = np.full((5, 2), edge)
    lm[1, 0] += 1.0
    aligned = aligned_or_none(Image.new("RGB", (32, 32)), lm, 32)
    assert aligned is None or aligned.crop.size == (32, 32)
