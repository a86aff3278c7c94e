"""Bad and awkward inputs, generated in memory: one table serves the FaceEditor and the HTTP suites.

Each case is (name, file name, file bytes, keyword arguments of the edit, expectation), where the expectation
is `Error("substring of the message")` or `Edited((width, height))`: an edited photo of that size came back.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Error:
    message: str  # part of the message the user must see


@dataclass(frozen=True)
class Edited:
    size: tuple[int, int]  # (width, height) of the photo that comes back


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    data: bytes
    edit: dict  # keyword arguments: targets / strength / face_index
    expect: Error | Edited


def encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height; a decoder that trusted it would allocate width*height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def exif_rotated(portrait: Image.Image) -> bytes:
    """The portrait stored lying on its side with EXIF orientation 6 (rotate 90° clockwise to view)."""
    stored = portrait.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise; the viewer turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def animated_gif(portrait: Image.Image) -> bytes:
    frames = [portrait.convert("P"), Image.new("P", portrait.size, 0)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def palette_with_transparency(portrait: Image.Image) -> bytes:
    pal = portrait.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    return encode(pal, "PNG", transparency=0)


def sixteen_bit_grey(portrait: Image.Image) -> bytes:
    grey = np.asarray(portrait.convert("L"), np.uint16) * 257
    return encode(Image.fromarray(grey.astype(np.uint16)), "PNG")


def two_faces(portrait: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (portrait.width * 2, portrait.height), (128, 128, 128))
    canvas.paste(portrait, (0, 0))
    canvas.paste(portrait.resize((portrait.width * 3 // 4,) * 2), (portrait.width, portrait.height // 8))
    return canvas


def cases(portrait: Image.Image) -> list[Case]:
    """portrait: an RGB photo with exactly one clear face (the astronaut)."""
    w, h = portrait.size
    upright = portrait.crop((0, 0, w, h * 7 // 8))  # not square, so a sideways result shows in its size
    blond = {"targets": {"Blond_Hair": True}}
    jpeg = encode(portrait, "JPEG", quality=90)
    not_read = "Could not read this file as an image"
    no_face = "No face was found"
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8))
    tiny_canvas = Image.new("RGB", (320, 240), (128, 128, 128))
    tiny_canvas.paste(portrait.resize((w // 8, h // 8)), (100, 80))  # the face is now about 20 px wide
    return [
        Case("empty file", "empty.jpg", b"", blond, Error(not_read)),
        Case("truncated jpeg", "cut.jpg", jpeg[: len(jpeg) // 3], blond, Error(not_read)),
        Case("text named .jpg", "notes.jpg", b"just some text, not a picture\n" * 20, blond, Error(not_read)),
        Case("html named .png", "page.png", b"<html><body>not an image</body></html>", blond, Error(not_read)),
        Case("1x1 image", "dot.png", encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), blond, Error(no_face)),
        Case("20000x20000 png", "bomb.png", png_header_only(20000, 20000), blond, Error("the limit is 50 MP")),
        Case("16-bit png", "deep.png", sixteen_bit_grey(portrait), blond, Edited((w, h))),
        Case("grayscale", "grey.png", encode(portrait.convert("L"), "PNG"), blond, Edited((w, h))),
        Case("palette + transparency", "pal.png", palette_with_transparency(portrait), blond, Edited((w, h))),
        Case("rgba", "rgba.png", encode(portrait.convert("RGBA"), "PNG"), blond, Edited((w, h))),
        Case("cmyk jpeg", "cmyk.jpg", encode(portrait.convert("CMYK"), "JPEG", quality=95), blond, Edited((w, h))),
        Case("exif-rotated portrait", "rotated.jpg", exif_rotated(upright), blond, Edited(upright.size)),
        Case("animated gif", "anim.gif", animated_gif(portrait), blond, Edited((w, h))),
        Case("no face", "noise.png", encode(noise, "PNG"), blond, Error(no_face)),
        Case(
            "many faces, second",
            "two.png",
            encode(two_faces(portrait), "PNG"),
            {**blond, "face_index": 1},
            Edited((2 * w, h)),
        ),
        Case(
            "many faces, index past the end",
            "two.png",
            encode(two_faces(portrait), "PNG"),
            {**blond, "face_index": 5},
            Error("the image has 2 face(s)"),
        ),
        Case("face 20 px wide", "far.png", encode(tiny_canvas, "PNG"), blond, Error(no_face)),
        Case("50:1 aspect", "strip.png", encode(portrait.resize((1000, 20)), "PNG"), blond, Error(no_face)),
        Case("unknown attribute", "face.jpg", jpeg, {"targets": {"Purple_Hair": True}}, Error("Unknown attribute")),
        Case("strength above 2", "face.jpg", jpeg, {**blond, "strength": 5.0}, Error("Strength must be")),
        Case("negative strength", "face.jpg", jpeg, {**blond, "strength": -1.0}, Error("Strength must be")),
    ]
