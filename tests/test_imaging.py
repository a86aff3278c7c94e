"""Tests for stargan_app.imaging: every input kind, every PIL mode, corrupt files and decompression bombs."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_inputs import encode, png_header_only
from PIL import Image

from stargan_app.errors import ImageError, ImageTooLargeError
from stargan_app.imaging import (
    MAX_PIXELS,
    load_image,
    make_grid,
    pil_to_tensor,
    tensor_to_pil,
    tensors_to_pils,
)


def assert_rgb(im: Image.Image, size: tuple[int, int]) -> None:
    assert isinstance(im, Image.Image)
    assert im.mode == "RGB"
    assert im.size == size


# ---------------------------------------------------------------- modes


@pytest.mark.parametrize(
    ("mode", "fill", "expected"),
    [
        ("1", 1, (255, 255, 255)),
        ("L", 100, (100, 100, 100)),
        ("LA", (100, 255), (100, 100, 100)),
        ("LA", (100, 0), (255, 255, 255)),
        ("P", 0, (0, 0, 0)),
        ("PA", (0, 0), (255, 255, 255)),
        ("RGB", (10, 20, 30), (10, 20, 30)),
        ("RGBA", (200, 0, 0, 255), (200, 0, 0)),
        ("RGBA", (200, 0, 0, 0), (255, 255, 255)),
        ("RGBa", (0, 0, 0, 0), (255, 255, 255)),
        ("La", (0, 0), (255, 255, 255)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("I;16", 65535, (255, 255, 255)),
        ("I;16", 257 * 100, (100, 100, 100)),
        ("I", 200, (200, 200, 200)),
        ("I", 65535, (255, 255, 255)),
        ("F", 0.5, (128, 128, 128)),
        ("F", 200.0, (200, 200, 200)),
        ("YCbCr", (128, 128, 128), (128, 128, 128)),
    ],
)
def test_every_mode_becomes_rgb(mode, fill, expected):
    out = load_image(Image.new(mode, (7, 5), fill))
    assert_rgb(out, (7, 5))
    assert np.allclose(out.getpixel((3, 2)), expected, atol=2)


def test_semi_transparent_is_composited_on_white():
    out = load_image(Image.new("RGBA", (4, 4), (0, 0, 0, 128)))
    assert np.allclose(out.getpixel((0, 0)), (127, 127, 127), atol=1)


def test_input_image_is_not_modified_or_returned():
    src = Image.new("RGB", (4, 4), (1, 2, 3))
    out = load_image(src)
    assert out is not src
    out.putpixel((0, 0), (9, 9, 9))
    assert src.getpixel((0, 0)) == (1, 2, 3)


# ---------------------------------------------------------------- file formats


@pytest.mark.parametrize(("orientation", "red_side"), [(6, "top"), (8, "bottom"), (1, "left")])
def test_exif_orientation_is_applied(orientation, red_side):
    # The sensor image is landscape with red on its left; tags 6/8 mean "rotate to portrait".
    stored = Image.new("RGB", (64, 32), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 16, 32))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = load_image(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    arr = np.asarray(out).astype(int)
    if red_side == "left":
        assert out.size == (64, 32)
        strip = arr[:, :8]
    else:
        assert out.size == (32, 64)
        strip = arr[:8] if red_side == "top" else arr[-8:]
    assert strip[..., 0].mean() > 200
    assert strip[..., 2].mean() < 60


def test_cmyk_jpeg():
    out = load_image(encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95))
    r, g, b = out.getpixel((8, 8))
    assert_rgb(out, (16, 16))
    assert r > 200 and g < 60 and b < 60


def test_16_bit_png_is_scaled_not_clipped():
    ramp = (np.arange(16, dtype=np.uint16) * 4369).reshape(4, 4)  # 0 .. 65535
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = np.asarray(load_image(data))[..., 0]
    assert np.abs(out.astype(int) - np.rint(ramp / 257).astype(int)).max() <= 1


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency(fmt):
    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 255] * 254)
    im.paste(0, (0, 0, 4, 8))
    out = load_image(encode(im, fmt, transparency=0))
    assert out.getpixel((1, 1)) == (255, 255, 255)
    assert out.getpixel((6, 6)) == (255, 0, 0)


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    r, g, b = load_image(data).getpixel((5, 5))
    assert r > 200 and g < 50 and b < 50


def test_pil_image_on_a_later_frame_gives_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in [(255, 0, 0), (0, 0, 255)]]
    im = Image.open(io.BytesIO(encode(frames[0], "GIF", save_all=True, append_images=frames[1:])))
    im.seek(1)
    assert load_image(im).getpixel((5, 5))[0] > 200


def test_path_inputs(tmp_path: Path):
    p = tmp_path / "face.png"
    Image.new("RGB", (5, 3), (1, 2, 3)).save(p)
    assert_rgb(load_image(p), (5, 3))
    assert_rgb(load_image(str(p)), (5, 3))


def test_bytes_like_and_file_inputs():
    data = encode(Image.new("L", (6, 4), 50), "PNG")
    for src in (data, bytearray(data), memoryview(data), io.BytesIO(data)):
        out = load_image(src)
        assert_rgb(out, (6, 4))
        assert out.getpixel((0, 0)) == (50, 50, 50)


def test_lazily_opened_pil_image():
    im = Image.open(io.BytesIO(encode(Image.new("RGB", (9, 9), (5, 6, 7)), "JPEG")))
    assert_rgb(load_image(im), (9, 9))


# ---------------------------------------------------------------- bad input


def test_missing_path(tmp_path: Path):
    with pytest.raises(ImageError, match="find"):
        load_image(tmp_path / "nope.jpg")


def test_directory_path(tmp_path: Path):
    with pytest.raises(ImageError):
        load_image(tmp_path)


def test_zero_bytes(tmp_path: Path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    for src in (p, b""):
        with pytest.raises(ImageError, match="Could not read this file as an image"):
            load_image(src)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.1])
def test_truncated_jpeg(keep):
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(ImageError, match="Could not read this file as an image"):
        load_image(data[: int(len(data) * keep)])


def test_truncated_png():
    rng = np.random.default_rng(2)
    data = encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(ImageError):
        load_image(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.jpg", b"just some text\n" * 10),
        ("page.png", b"<!DOCTYPE html><html><body>hi</body></html>"),
    ],
)
def test_non_images_with_image_names(tmp_path: Path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ImageError, match="Could not read this file as an image"):
        load_image(p)


def test_unsupported_type():
    with pytest.raises(ImageError):
        load_image(12345)  # type: ignore[arg-type]


def test_decompression_bomb_refused_before_decoding(tmp_path: Path):
    data = png_header_only(20000, 20000)
    p = tmp_path / "bomb.png"
    p.write_bytes(data)
    for src in (data, p):
        start = time.perf_counter()
        with pytest.raises(ImageTooLargeError) as info:
            load_image(src)
        assert time.perf_counter() - start < 2.0
        assert "20000x20000" in str(info.value)
        assert "400 MP" in str(info.value)
        assert "50 MP" in str(info.value)


def test_over_our_limit_but_under_pils():
    data = png_header_only(8000, 8000)  # 64 MP: PIL would only warn, we refuse
    with pytest.raises(ImageTooLargeError, match="8000x8000"):
        load_image(data)
    assert MAX_PIXELS == 50_000_000


def test_custom_pixel_limit_applies_to_all_sources():
    im = Image.new("RGB", (100, 100))
    for src in (im, encode(im, "PNG"), np.zeros((100, 100, 3), np.uint8)):
        with pytest.raises(ImageTooLargeError, match="100x100"):
            load_image(src, max_pixels=9_999)
        assert_rgb(load_image(src, max_pixels=10_000), (100, 100))


def test_oversized_pil_image_is_refused():
    with pytest.raises(ImageTooLargeError):
        load_image(Image.open(io.BytesIO(png_header_only(9000, 9000))))


def test_tiny_and_extreme_aspect_images_are_returned():
    assert_rgb(load_image(Image.new("RGB", (1, 1))), (1, 1))
    assert_rgb(load_image(encode(Image.new("RGB", (1000, 2)), "PNG")), (1000, 2))


# ---------------------------------------------------------------- numpy


@pytest.mark.parametrize(
    ("arr", "expected"),
    [
        (np.full((4, 6), 77, np.uint8), (77, 77, 77)),
        (np.full((4, 6, 1), 77, np.uint8), (77, 77, 77)),
        (np.full((4, 6, 3), (1, 2, 3), np.uint8), (1, 2, 3)),
        (np.full((4, 6, 4), (1, 2, 3, 0), np.uint8), (255, 255, 255)),
        (np.full((4, 6, 4), (1, 2, 3, 255), np.uint8), (1, 2, 3)),
        (np.full((4, 6, 2), (40, 255), np.uint8), (40, 40, 40)),
        (np.full((4, 6), 65535, np.uint16), (255, 255, 255)),
        (np.full((4, 6, 3), 257 * 9, np.uint16), (9, 9, 9)),
        (np.full((4, 6, 3), 0.5, np.float32), (128, 128, 128)),
        (np.full((4, 6, 3), 0.5, np.float64) * 255, (128, 128, 128)),
        (np.full((4, 6, 3), 2.0, np.float16), (2, 2, 2)),
        (np.full((4, 6, 3), np.nan, np.float32), (0, 0, 0)),
        (np.full((4, 6), True), (255, 255, 255)),
        (np.full((4, 6, 3), 300, np.int64), (1, 1, 1)),
        (np.full((4, 6, 3), 200, np.int32), (200, 200, 200)),
        (np.full((4, 6, 3), -5, np.int16), (0, 0, 0)),
    ],
    ids=lambda v: f"{v.dtype}{v.shape}" if isinstance(v, np.ndarray) else str(v),
)
def test_numpy_inputs(arr, expected):
    out = load_image(arr)
    assert_rgb(out, (6, 4))
    assert np.allclose(out.getpixel((2, 1)), expected, atol=1)


def test_numpy_non_contiguous():
    arr = np.zeros((8, 10, 3), np.uint8)
    arr[:, :5] = 255
    out = load_image(arr[:, ::-1])
    assert out.getpixel((9, 0)) == (255, 255, 255)
    assert out.getpixel((0, 0)) == (0, 0, 0)


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros(5, np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((2, 2, 2, 2), np.uint8),
        np.zeros((4, 4), np.complex64),
        np.zeros((4, 4), object),
    ],
    ids=["1d", "5ch", "empty", "4d", "complex", "object"],
)
def test_bad_numpy_inputs(arr):
    with pytest.raises(ImageError):
        load_image(arr)


# ---------------------------------------------------------------- tensors and grids


def test_tensor_round_trip():
    rng = np.random.default_rng(3)
    im = Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8))
    t = pil_to_tensor(im)
    assert t.shape == (3, 5, 7) and t.dtype == torch.float32
    assert float(t.min()) >= -1.0 and float(t.max()) <= 1.0
    assert np.array_equal(np.asarray(tensor_to_pil(t)), np.asarray(im))


def test_pil_to_tensor_values_and_modes():
    assert torch.allclose(
        pil_to_tensor(Image.new("RGB", (2, 2), (0, 255, 0)))[:, 0, 0],
        torch.tensor([-1.0, 1.0, -1.0]),
    )
    assert pil_to_tensor(Image.new("L", (3, 2), 255)).shape == (3, 2, 3)


def test_tensor_to_pil_clamps_and_accepts_one_channel():
    t = torch.tensor([[[-5.0, 0.0], [1.0, 7.0]]])
    out = tensor_to_pil(t)
    assert_rgb(out, (2, 2))
    assert out.getpixel((0, 0)) == (0, 0, 0)
    assert out.getpixel((1, 0)) == (128, 128, 128)
    assert out.getpixel((1, 1)) == (255, 255, 255)


def test_tensor_to_pil_rejects_bad_shapes():
    for shape in [(2, 4, 4), (4, 4), (1, 3, 4, 4)]:
        with pytest.raises(ValueError):
            tensor_to_pil(torch.zeros(shape))


def test_tensors_to_pils():
    batch = torch.zeros(3, 3, 4, 5, requires_grad=True)
    pils = tensors_to_pils(batch)
    assert len(pils) == 3
    assert all(p.size == (5, 4) and p.mode == "RGB" for p in pils)


def test_make_grid_layout():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    grid = make_grid([Image.new("RGB", (10, 6), c) for c in colours], ncols=2, pad=2, bg=(9, 9, 9))
    assert grid.size == (2 * 10 + 3 * 2, 2 * 6 + 3 * 2)
    assert grid.getpixel((0, 0)) == (9, 9, 9)
    assert grid.getpixel((2, 2)) == (255, 0, 0)
    assert grid.getpixel((14, 2)) == (0, 255, 0)
    assert grid.getpixel((2, 10)) == (0, 0, 255)
    assert grid.getpixel((14, 10)) == (9, 9, 9)


def test_make_grid_single_row_and_errors():
    assert make_grid([Image.new("L", (4, 4))] * 3, ncols=5, pad=0).size == (12, 4)
    with pytest.raises(ValueError):
        make_grid([], ncols=2)
    with pytest.raises(ValueError):
        make_grid([Image.new("RGB", (4, 4)), Image.new("RGB", (5, 4))], ncols=2)
