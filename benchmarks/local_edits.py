"""How local the served edits are, on the licensed portraits (issue 19's figures), for each paste-back setting.

    python benchmarks/local_edits.py                                   # ../shared/data/faces, shipped weights
    python benchmarks/local_edits.py --sheet artifacts/local_edits.png # and a before/after sheet

Figures, per setting (each from one strength-1 edit per portrait, the face box from the detector):
- skin leak of hair edits (Blond, Black): mean |change| on the inner face (rows 35-80% of the face box, columns
  25-75%) over mean |change| on the ring around the box where hair is (half a box above and to each side, box
  excluded); about 0 for a hair-only edit, about 1 for a tint of everything. Mean over portraits and both edits
  (an edit to the colour the face already has, per D, changes nothing and is left out).
- changed area of the glasses edit: pixels changed by more than 4/255 (in any channel), in face boxes; mean.
- pixels changed beyond one face-box width of the face, by any edit, summed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stargan_app.imaging import load_image
from stargan_app.inference import FaceEditor
from stargan_app.inference.face_editor import face_square
from stargan_app.labels import display_name

PORTRAITS = ("chris.jpg", "luciano.png", "grace_hopper.jpg", "astronaut.png")
HAIR_EDITS = ("Blond_Hair", "Black_Hair")
SETTINGS = {  # name -> FaceEditor.from_pretrained options
    "before (no maps: ellipse, plain warp)": {"regions": False, "guided": False},
    "regions, plain warp": {"guided": False},
    "regions + guided (served)": {},
}


def box_slices(
    box: tuple[float, float, float, float], shape: tuple[int, int], fx: tuple[float, float], fy: tuple[float, float]
):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    ys = slice(max(0, round(y0 + fy[0] * h)), min(shape[0], round(y0 + fy[1] * h)))
    xs = slice(max(0, round(x0 + fx[0] * w)), min(shape[1], round(x0 + fx[1] * w)))
    return ys, xs


def skin_leak(change: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """change: (H, W) mean |change| over channels."""
    inner = change[box_slices(box, change.shape, (0.25, 0.75), (0.35, 0.80))].mean()
    ring = np.zeros(change.shape, bool)
    ring[box_slices(box, change.shape, (-0.5, 1.5), (-0.5, 1.0))] = True
    ring[box_slices(box, change.shape, (0.0, 1.0), (0.0, 1.0))] = False
    return float(inner / max(change[ring].mean(), 1e-9))


def figures(
    editor: FaceEditor, photos: dict[str, Image.Image]
) -> tuple[dict[str, float], dict[str, dict[str, Image.Image]]]:
    leaks, areas, beyond, edited = [], [], 0, {}
    for name, photo in photos.items():
        prep = editor.prepare(photo)
        box = prep.face.box
        w = box[2] - box[0]
        before = np.asarray(photo, np.int16)
        far = np.ones(before.shape[:2], bool)
        far[box_slices(box, far.shape, (-1.0, 2.0), (-w / (box[3] - box[1]), 1.0 + w / (box[3] - box[1])))] = False
        edited[name] = {}
        for a in editor.attributes:
            out = editor.edit(prep, {a: True}).image
            diff = np.abs(np.asarray(out, np.int16) - before)
            edited[name][a] = out
            beyond += int((diff.max(2) > 0)[far].sum())
            if a in HAIR_EDITS and diff.any():  # a hair colour the face already has is no edit: no figure
                leaks.append(skin_leak(diff.mean(2), box))
            if a == "Eyeglasses":
                areas.append(float((diff.max(2) > 4).sum() / ((box[2] - box[0]) * (box[3] - box[1]))))
    return {"skin_leak": float(np.mean(leaks)), "glasses_area": float(np.mean(areas)), "beyond": beyond}, edited


def sheet(
    photos, results, out: Path, edits=("Blond_Hair", "Black_Hair", "Eyeglasses", "Wearing_Hat", "Mustache"), tile=192
) -> Path:
    """Per portrait: input, then per edit every setting side by side, cut around the face."""
    names = list(results)
    cols = [("input", None, None)] + [
        (f"{display_name(a)}\n{s.split(' (')[0][:18]}", a, s) for a in edits for s in names
    ]
    head = 30
    img = Image.new("RGB", (tile * len(cols), head + tile * len(photos)), "white")
    draw = ImageDraw.Draw(img)
    for k, (title, _, _) in enumerate(cols):
        draw.multiline_text((k * tile + 4, 2), title, fill="black", spacing=1)
    for r, (name, photo) in enumerate(photos.items()):
        square = results[names[0]]["squares"][name]
        for k, (_, a, s) in enumerate(cols):
            src = photo if a is None else results[s]["edited"][name][a]
            img.paste(src.resize((tile, tile), Image.Resampling.LANCZOS, box=square), (k * tile, head + r * tile))
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces-dir", default="../shared/data/faces")
    p.add_argument("--weights", default=None)
    p.add_argument("--sheet", default=None, help="write a before/after PNG here")
    args = p.parse_args()
    torch.set_num_threads(1)
    photos = {n: load_image(Path(args.faces_dir) / n) for n in PORTRAITS}
    results = {}
    print(f"{'setting':40s} {'skin leak':>10s} {'glasses area':>13s} {'px beyond 1 box':>16s}")
    for name, options in SETTINGS.items():
        editor = FaceEditor.from_pretrained(args.weights, **options)
        values, edited = figures(editor, photos)
        squares = {n: face_square(editor.detect(ph)[0].box, ph.size) for n, ph in photos.items()}
        results[name] = {"values": values, "edited": edited, "squares": squares}
        print(f"{name:40s} {values['skin_leak']:10.3f} {values['glasses_area']:13.2f} {values['beyond']:16d}")
    if args.sheet:
        print(f"wrote {sheet(photos, results, Path(args.sheet))}")


if __name__ == "__main__":
    main()
