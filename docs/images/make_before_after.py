"""Writes docs/images/before_after.png, the README's first picture: a portrait from assets/ and one edit of it, as
the shipped weights serve it, cut around the face. `python docs/images/make_before_after.py` (from anywhere)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stargan_app.imaging import load_image  # noqa: E402
from stargan_app.inference import FaceEditor  # noqa: E402
from stargan_app.inference.face_editor import face_square  # noqa: E402
from stargan_app.labels import display_name  # noqa: E402


def before_after(photo: Path, attribute: str, out: Path, side: int = 256, caption_height: int = 22) -> Path:
    editor = FaceEditor.from_pretrained()
    image = load_image(photo)
    prepared = editor.prepare(image)
    square = face_square(prepared.face.box, image.size)
    edited = editor.edit(prepared, {attribute: True}).image
    sheet = Image.new("RGB", (2 * side, side + caption_height), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (picture, caption) in enumerate([(image, "before"), (edited, f"after: {display_name(attribute)}")]):
        sheet.paste(picture.resize((side, side), Image.Resampling.LANCZOS, box=square), (k * side, 0))
        draw.text((k * side + 6, side + 5), caption, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photo", type=Path, default=ROOT / "assets" / "astronaut.png")
    parser.add_argument("--attribute", default="Black_Hair", help="the attribute switched on (schema name)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "before_after.png")
    args = parser.parse_args()
    print(before_after(args.photo, args.attribute, args.out))
