"""Image loading (any mode, any source, bomb-safe) and PIL/tensor conversion helpers."""

from __future__ import annotations

import io
import math
import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps

from stargan_app.errors import ImageError, ImageTooLargeError, StarGANAppError

MAX_PIXELS = 50_000_000

ImageSource = Image.Image | np.ndarray | str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_WIDE_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
# PIL's format plugins raise far more than OSError on malformed input; Warning covers "-W error" runs, where
# PIL's corrupt-EXIF UserWarning would otherwise escape.
_DECODE_ERRORS = (
    Warning,
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    LookupError,
    TypeError,
    ArithmeticError,
    AttributeError,
    RuntimeError,
    AssertionError,
    BufferError,
    struct.error,
)


def load_image(src: ImageSource, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Return ``src`` as an upright RGB image; raise ImageError for anything unreadable or too large."""
    if isinstance(src, Image.Image):
        return _decode(src, max_pixels)
    if isinstance(src, np.ndarray):
        return _from_array(src, max_pixels)
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise ImageError(f"Could not find the image file '{path.name}'.")
        return _open_and_decode(path, max_pixels)
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise ImageError("Could not read this file as an image (it is empty).")
        return _open_and_decode(io.BytesIO(bytes(src)), max_pixels)
    if hasattr(src, "read"):
        return _open_and_decode(src, max_pixels)
    raise ImageError(f"Could not read this input as an image (unsupported type {type(src).__name__}).")


def _too_large(width: int, height: int, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"This image is {width}x{height} ({_mp(width * height)} MP); the limit is {_mp(max_pixels)} MP. "
        "Please upload a smaller image."
    )


def _mp(pixels: int) -> str:
    value = pixels / 1e6
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise _too_large(width, height, max_pixels)


def _open_and_decode(fp: Path | BinaryIO, max_pixels: int) -> Image.Image:
    try:
        if isinstance(fp, Path) and fp.stat().st_size == 0:
            raise ImageError("Could not read this file as an image (it is empty).")
        with Image.open(fp) as im:
            return _decode(im, max_pixels)
    except StarGANAppError:
        raise
    except _BOMB_ERRORS as exc:
        raise _bomb_error(fp, exc, max_pixels) from None
    except Image.UnidentifiedImageError:
        raise ImageError("Could not read this file as an image (unknown or unsupported format).") from None
    except MemoryError:
        raise ImageTooLargeError("This image needs too much memory to decode. Please upload a smaller image.") from None
    except _DECODE_ERRORS as exc:
        raise ImageError(f"Could not read this file as an image ({_describe(exc)}).") from None


def _bomb_error(fp: Path | BinaryIO, exc: BaseException, max_pixels: int) -> ImageTooLargeError:
    """Report PIL's own decompression-bomb refusal, with the dimensions when the header can be probed."""
    size = _probe_size(fp)
    if size is not None:
        return _too_large(size[0], size[1], max_pixels)
    match = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = f" ({_mp(int(match.group(1)))} MP)" if match else ""
    return ImageTooLargeError(
        f"This image{pixels} is too large; the limit is {_mp(max_pixels)} MP. Please upload a smaller image."
    )


def _probe_size(fp: Path | BinaryIO) -> tuple[int, int] | None:
    """Read only the header through PIL's format plugins, bypassing Image.open's bomb check."""
    try:
        f = open(fp, "rb") if isinstance(fp, Path) else fp  # noqa: SIM115
        try:
            Image.init()
            f.seek(0)
            prefix = f.read(16)
            for fmt in Image.ID:
                factory, accept = Image.OPEN[fmt]
                if accept is not None and not accept(prefix):
                    continue
                f.seek(0)
                try:
                    return factory(f, "").size
                except _DECODE_ERRORS:
                    pass
        finally:
            if f is not fp:
                f.close()
    except _DECODE_ERRORS:
        return None
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "truncated" in text.lower():
        return "the file is truncated or incomplete"
    return text[:200]


def _decode(im: Image.Image, max_pixels: int) -> Image.Image:
    """Size-check, take frame 0, load, apply EXIF orientation and flatten to RGB."""
    _check_size(im.width, im.height, max_pixels)
    if im.width == 0 or im.height == 0:
        raise ImageError("Could not read this file as an image (it has no pixels).")
    try:
        if getattr(im, "n_frames", 1) > 1 and im.tell() != 0:
            im.seek(0)
        im.load()
        im = ImageOps.exif_transpose(im)  # always a new image: the caller's stays untouched
        _check_size(im.width, im.height, max_pixels)
        return _to_rgb(im)
    except StarGANAppError:
        raise
    except _BOMB_ERRORS:
        raise _too_large(im.width, im.height, max_pixels) from None
    except MemoryError:
        raise ImageTooLargeError("This image needs too much memory to decode. Please upload a smaller image.") from None
    except _DECODE_ERRORS as exc:
        raise ImageError(f"Could not read this file as an image ({_describe(exc)}).") from None


def _to_rgb(im: Image.Image) -> Image.Image:
    """`im` (an image of our own) flattened to RGB; an RGB image comes back as it is (no copy of 12 MP)."""
    if im.mode in _WIDE_MODES:
        return _array_to_rgb(np.asarray(im), wide_mode=im.mode)
    if im.mode == "La":  # premultiplied grey+alpha, which PIL cannot convert: over white is L + 255 - A
        lum, alpha = (np.asarray(band, dtype=np.int16) for band in im.split())
        grey = np.clip(lum + 255 - alpha, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if im.mode in _ALPHA_MODES or im.has_transparency_data:
        return _flatten_alpha(im.convert("RGBA"))
    if im.mode == "RGB":
        return im
    return im.convert("RGB")


def _flatten_alpha(rgba: Image.Image) -> Image.Image:
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _from_array(arr: np.ndarray, max_pixels: int) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ImageError(f"Could not read this array as an image (shape {arr.shape}; expected HxW or HxWxC).")
    height, width = arr.shape[:2]
    _check_size(width, height, max_pixels)
    if width == 0 or height == 0:
        raise ImageError("Could not read this array as an image (it has no pixels).")
    return _array_to_rgb(arr)


def _array_to_rgb(arr: np.ndarray, wide_mode: str | None = None) -> Image.Image:
    arr8 = _to_uint8(arr, wide_mode)
    if arr8.ndim == 2:
        return Image.fromarray(arr8, "L").convert("RGB")
    channels = arr8.shape[2]
    if channels == 3:
        return Image.fromarray(arr8, "RGB")
    if channels == 2:
        arr8 = np.concatenate([arr8[:, :, :1].repeat(3, axis=2), arr8[:, :, 1:]], axis=2)
    return _flatten_alpha(Image.fromarray(np.ascontiguousarray(arr8), "RGBA"))


def _to_uint8(arr: np.ndarray, wide_mode: str | None) -> np.ndarray:
    """Map bool, 8/16-bit integer and [0,1] or [0,255] float arrays onto uint8."""
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        with np.errstate(invalid="ignore", over="ignore"):
            data = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if data.size and float(data.max()) <= 1.0:
            data = data * 255.0
        return np.clip(np.rint(data), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        data = arr.astype(np.int64)
        sixteen_bit = arr.dtype == np.uint16 or (wide_mode or "").startswith("I;16")
        if sixteen_bit or (data.size and int(data.max()) > 255):
            data = (data + 128) // 257
        return np.clip(data, 0, 255).astype(np.uint8)
    raise ImageError(f"Could not read this array as an image (unsupported dtype {arr.dtype}).")


def to_model_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1], the range every model here reads and writes."""
    return pixels.float() / 127.5 - 1.0


def to_pixels(values: torch.Tensor) -> torch.Tensor:
    """Model-range values in [-1, 1] (clamped) -> uint8 pixels in [0, 255]."""
    return ((values.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 tensor (3, H, W) in [-1, 1]."""
    arr = np.asarray(img.convert("RGB") if img.mode != "RGB" else img, dtype=np.uint8)
    return to_model_range(torch.from_numpy(arr.copy()).permute(2, 0, 1))


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """Tensor (3, H, W) or (1, H, W) in [-1, 1] (clamped) -> RGB PIL image."""
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, H, W) tensor, got shape {tuple(t.shape)}")
    arr = to_pixels(t.detach().to("cpu", torch.float32))
    if arr.shape[0] == 1:
        arr = arr.expand(3, -1, -1)
    return Image.fromarray(arr.permute(1, 2, 0).contiguous().numpy(), "RGB")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (B, C, H, W) tensor with edge replication; sigma <= 0 returns x unchanged."""
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(2.5 * sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(x.dtype)
    channels = x.size(1)
    y = torch.nn.functional.pad(x, (radius,) * 4, mode="replicate")
    y = torch.nn.functional.conv2d(y, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return torch.nn.functional.conv2d(y, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def smoothstep(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """0 below lo, 1 above hi, 3t^2 - 2t^3 between."""
    t = ((x - lo) / (hi - lo)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def elliptical_window(size: int, inner: float) -> torch.Tensor:
    """(size, size) weights: 1 inside the inscribed circle's `inner` fraction, a smoothstep down to 0 on the circle."""
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    radius = torch.sqrt(centres[:, None] ** 2 + centres[None, :] ** 2)
    return smoothstep(1 - radius, 0.0, max(1e-6, 1 - inner))


def tensors_to_pils(batch: torch.Tensor | Sequence[torch.Tensor]) -> list[Image.Image]:
    """Batch (N, C, H, W) (or a sequence of (C, H, W)) -> list of RGB PIL images."""
    return [tensor_to_pil(t) for t in batch]


def make_grid(
    images: Sequence[Image.Image],
    ncols: int,
    pad: int = 2,
    bg: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Row-major grid of equal-size images with ``pad`` pixels around and between them."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    if ncols < 1 or pad < 0:
        raise ValueError("ncols must be >= 1 and pad >= 0")
    w, h = images[0].size
    if any(im.size != (w, h) for im in images):
        raise ValueError("make_grid needs images of equal size")
    cols = min(ncols, len(images))
    rows = math.ceil(len(images) / cols)
    grid = Image.new("RGB", (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad), bg)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid.paste(
            im.convert("RGB") if im.mode != "RGB" else im,
            (pad + c * (w + pad), pad + r * (h + pad)),
        )
    return grid


# sRGB (D65) <-> CIELAB, on float arrays (..., 3): rgb in [0, 1], L* in [0, 100]
_RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], np.float32)
_WHITE = np.array([0.95047, 1.0, 1.08883], np.float32)
_LAB_EPS = 6.0 / 29.0


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> CIELAB (L*, a*, b*) under D65."""
    rgb = np.asarray(rgb, np.float32)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > _LAB_EPS**3, np.cbrt(xyz), xyz / (3 * _LAB_EPS**2) + 4.0 / 29.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB under D65 -> sRGB, clipped to [0, 1]."""
    lab = np.asarray(lab, np.float32)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f > _LAB_EPS, f**3, 3 * _LAB_EPS**2 * (f - 4.0 / 29.0)) * _WHITE
    linear = np.clip(xyz @ np.linalg.inv(_RGB_TO_XYZ).T.astype(np.float32), 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
