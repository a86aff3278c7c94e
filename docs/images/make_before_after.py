"""Redraw docs/images/before_after.png, the README's first picture: assets/astronaut.png and its served "Black hair"
edit side by side, each the padded square around the face at 256 px (python docs/images/make_before_after.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PIL import Image, ImageDraw

from stargan_app.imaging import load_image
from stargan_app.inference import FaceEditor
from stargan_app.inference.face_editor import face_square

ROOT = Path(__file__).resolve().parents[2]
photo = load_image(ROOT / "assets" / "astronaut.png")
editor = FaceEditor.from_pretrained()
prep = editor.prepare(photo)
edited = editor.edit(prep, {"Black_Hair": True}).image
square = face_square(prep.face.box, photo.size)
side = 256
out = Image.new("RGB", (2 * side, side + 22), "white")
for k, (image, caption) in enumerate(((photo, "before"), (edited, "after: Black hair"))):
    out.paste(image.resize((side, side), Image.Resampling.LANCZOS, box=square), (k * side, 0))
    ImageDraw.Draw(out).text((k * side + 4, side + 5), caption, fill="black")
out.save(ROOT / "docs" / "images" / "before_after.png")
