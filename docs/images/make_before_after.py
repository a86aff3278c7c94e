"""Redraw docs/images/before_after.png, the README's first picture: assets/astronaut.png and its served "Black hair"
edit, side by side, 256 px each (run from the repository root: python docs/images/make_before_after.py)."""

from pathlib import Path

from PIL import Image, ImageDraw

from stargan_app.imaging import load_image
from stargan_app.inference import FaceEditor

ROOT = Path(__file__).resolve().parents[2]
photo = load_image(ROOT / "assets" / "astronaut.png")
edited = FaceEditor.from_pretrained().edit(photo, {"Black_Hair": True}).image
side = 256
out = Image.new("RGB", (2 * side, side + 22), "white")
for k, (image, caption) in enumerate(((photo, "before"), (edited, "after: Black hair"))):
    out.paste(image.resize((side, side), Image.Resampling.LANCZOS), (k * side, 0))
    ImageDraw.Draw(out).text((k * side + 4, side + 5), caption, fill="black")
out.save(ROOT / "docs" / "images" / "before_after.png")
