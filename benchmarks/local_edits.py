"""How local the served edits are, on the licensed portraits (issues 19 and 26), for each paste-back setting.

    python benchmarks/local_edits.py                                   # ../shared/data/faces, shipped weights
    python benchmarks/local_edits.py --sheet artifacts/local_edits.png # and a before/after sheet

Figures, per setting (each from one strength-1 edit per portrait, the face box from the detector):
- hair spill of the hair colours (Blond, Black, Gray): mean |change| outside the hair over mean |change| inside it,
  both within the face square (the box padded by half its width on every side); the hair is drawn by hand in
  tests/fixtures/hair_polygons.json. Also the mean |change| inside the hair (levels; must not fall), and inside its
  core (the hair less a rim of 4% of the box width, where a hand-drawn outline meets forehead or background).
- background beside the head: share of the pixels of two rectangles beside the face box (0.10-0.45 box widths out,
  rows 30-80% of the box; background on the portraits whose hair stays inside the sides of the box), less the
  hand-drawn hair (Grace Hopper's grey hair reaches into them), that a hair colour edit changes by more than 8 levels
  (in any channel); per portrait and colour, and the worst. A second table counts the whole rectangles, hair too.
  The same share for the other edits that live around the head (Bangs, Hat, Earrings), mean over those portraits.
- clothes below the jaw: share of the pixels below the face box (from 5% of its height under its bottom edge to the
  photo's foot, across the face square's columns), less the hand-drawn hair, that a hair colour edit changes by more
  than 8 levels (clothes, neck, collar; per portrait and colour).
- skin leak of hair edits (Blond, Black): mean |change| on the inner face (rows 35-80% of the face box, columns
  25-75%) over mean |change| on the ring around the box where hair is (half a box above and to each side, box
  excluded); about 0 for a hair-only edit, about 1 for a tint of everything. Mean over portraits and both edits
  (an edit to the colour the face already has, per D, changes nothing and is left out).
- changed area of the glasses edit: pixels changed by more than 4/255 (in any channel), in face boxes; mean.
- pixels changed beyond one face-box width of the face, by any edit, summed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stargan_app.imaging import load_image
from stargan_app.inference import FaceEditor
from stargan_app.inference.face_editor import face_square
from stargan_app.labels import display_name

ROOT = Path(__file__).resolve().parents[1]
HAIR_POLYGONS = ROOT / "tests" / "fixtures" / "hair_polygons.json"
PORTRAITS = ("chris.jpg", "luciano.png", "bryan.png", "grace_hopper.jpg", "astronaut.png")
BESIDE_PORTRAITS = ("chris.jpg", "luciano.png", "bryan.png", "grace_hopper.jpg")  # hair inside the box's sides
HAIR_EDITS = ("Blond_Hair", "Black_Hair")  # the skin leak's edits (issue 19)
HAIR_COLOURS = ("Blond_Hair", "Black_Hair", "Gray_Hair")  # the spill's and the background's edits (issue 26)
AROUND_HEAD = ("Bangs", "Wearing_Hat", "Wearing_Earrings")
BESIDE_LEVELS = 8  # a background pixel counts as changed above this many levels
SETTINGS = {  # name -> (FaceEditor.from_pretrained options, person gates replacing the default ones or None)
    "before (no maps: ellipse, plain warp)": ({"regions": False, "guided": False}, None),
    "regions + guided (before issue 26)": ({"person_masks": False}, None),
    "+ person & skin masks": ({"hair_colours": False}, None),
    "+ hair-colour model (served)": ({}, None),
    "+ masks on bangs, hat, earrings too": (
        {},
        {**{a: "hair" for a in HAIR_COLOURS + ("Brown_Hair",)}, **{a: "person" for a in AROUND_HEAD}},
    ),
}


def hair_mask(name: str, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the hand-drawn hair of a portrait (tests/fixtures/hair_polygons.json)."""
    entry = json.loads(HAIR_POLYGONS.read_text())["portraits"][name]
    if tuple(entry["size"]) != size:
        raise ValueError(f"{name} is {size}, the polygons were drawn on {tuple(entry['size'])}")
    img = Image.new("L", size, 0)
    for polygon in entry["hair"]:
        ImageDraw.Draw(img).polygon([tuple(p) for p in polygon], fill=1)
    return np.asarray(img, bool)


def hair_core(hair: np.ndarray, box_width: float) -> np.ndarray:
    """The hair less a rim of 4% of the face box's width."""
    size = 2 * max(1, round(0.04 * box_width)) + 1
    return np.asarray(Image.fromarray(hair.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(size))) > 0


def beside_head(
    box: tuple[float, float, float, float], shape: tuple[int, int], reach: tuple[float, float] = (0.10, 0.45)
) -> np.ndarray:
    """(H, W) bool: the two rectangles beside the face box (`reach` box widths out, rows 30-80% of the box)."""
    near, far = reach
    out = np.zeros(shape, bool)
    out[box_slices(box, shape, (-far, -near), (0.30, 0.80))] = True
    out[box_slices(box, shape, (1 + near, 1 + far), (0.30, 0.80))] = True
    return out


def box_slices(
    box: tuple[float, float, float, float], shape: tuple[int, int], fx: tuple[float, float], fy: tuple[float, float]
):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    ys = slice(max(0, round(y0 + fy[0] * h)), min(shape[0], round(y0 + fy[1] * h)))
    xs = slice(max(0, round(x0 + fx[0] * w)), min(shape[1], round(x0 + fx[1] * w)))
    return ys, xs


def below_jaw(box: tuple[float, float, float, float], square: np.ndarray) -> np.ndarray:
    """(H, W) bool: the face square's columns, from 5% of the box's height under its bottom edge to the photo's foot."""
    out = np.zeros(square.shape, bool)
    cols = np.flatnonzero(square.any(0))
    out[round(box[3] + 0.05 * (box[3] - box[1])) :, cols.min() : cols.max() + 1] = True
    return out


def skin_leak(change: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """change: (H, W) mean |change| over channels."""
    inner = change[box_slices(box, change.shape, (0.25, 0.75), (0.35, 0.80))].mean()
    ring = np.zeros(change.shape, bool)
    ring[box_slices(box, change.shape, (-0.5, 1.5), (-0.5, 1.0))] = True
    ring[box_slices(box, change.shape, (0.0, 1.0), (0.0, 1.0))] = False
    return float(inner / max(change[ring].mean(), 1e-9))


def figures(editor: FaceEditor, photos: dict[str, Image.Image]) -> tuple[dict, dict[str, dict[str, Image.Image]]]:
    leaks, areas, beyond, edited = [], [], 0, {}
    spill, in_hair, in_core, beside, beside_all, around, clothes = {}, {}, {}, {}, {}, [], {}
    for name, photo in photos.items():
        prep = editor.prepare(photo)
        box = prep.face.box
        w = box[2] - box[0]
        before = np.asarray(photo, np.int16)
        far = np.ones(before.shape[:2], bool)
        far[box_slices(box, far.shape, (-1.0, 2.0), (-w / (box[3] - box[1]), 1.0 + w / (box[3] - box[1])))] = False
        hair = hair_mask(name, photo.size)
        core = hair_core(hair, w)
        square = np.zeros(before.shape[:2], bool)
        x0, y0, x1, y1 = face_square(box, photo.size)
        square[y0:y1, x0:x1] = True
        sides = beside_head(box, before.shape[:2])
        jaw = below_jaw(box, square) & ~hair
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
            if a in HAIR_COLOURS:
                mean = diff.mean(2)
                in_hair[name, a] = float(mean[hair].mean())
                in_core[name, a] = float(mean[core].mean())
                spill[name, a] = float(mean[square & ~hair].mean() / max(in_hair[name, a], 1e-9))
                clothes[name, a] = float((diff.max(2) > BESIDE_LEVELS)[jaw].mean())
                if name in BESIDE_PORTRAITS:
                    beside[name, a] = float((diff.max(2) > BESIDE_LEVELS)[sides & ~hair].mean())
                    beside_all[name, a] = float((diff.max(2) > BESIDE_LEVELS)[sides].mean())
            if a in AROUND_HEAD and name in BESIDE_PORTRAITS:
                around.append(float((diff.max(2) > BESIDE_LEVELS)[sides].mean()))
    values = {
        "skin_leak": float(np.mean(leaks)),
        "glasses_area": float(np.mean(areas)),
        "beyond": beyond,
        "spill": spill,
        "in_hair": in_hair,
        "in_core": in_core,
        "beside": beside,
        "beside_all": beside_all,
        "around": float(np.mean(around)),
        "clothes": clothes,
    }
    return values, edited


def per_portrait_table(results: dict, key: str, title: str, fmt: str = "{:6.3f}") -> None:
    """One row per setting and portrait, one column per hair colour, and their mean."""
    print(f"\n{title}")
    print(f"  {'setting':38s} {'portrait':17s}" + "".join(f"{a.split('_')[0]:>8s}" for a in HAIR_COLOURS) + "    mean")
    for setting, result in results.items():
        table = result["values"][key]
        for name in dict.fromkeys(n for n, _ in table):
            row = [table[name, a] for a in HAIR_COLOURS]
            cells = "".join(f"{fmt.format(v):>8s}" for v in row)
            print(f"  {setting[:38]:38s} {name:17s}{cells}{fmt.format(np.mean(row)):>8s}")


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
    p.add_argument("--settings", default=None, help="only these settings, by number from 1 (e.g. 2,3)")
    args = p.parse_args()
    torch.set_num_threads(1)
    photos = {n: load_image(Path(args.faces_dir) / n) for n in PORTRAITS}
    results = {}
    head = ("skin leak", "glasses area", "px beyond 1 box", "hair spill", "in-hair", "beside: worst", "other edits")
    print(f"{'setting':38s} " + " ".join(f"{h:>14s}" for h in head))
    chosen = [int(k) for k in args.settings.split(",")] if args.settings else range(1, len(SETTINGS) + 1)
    for name, (options, gates) in [item for k, item in enumerate(SETTINGS.items(), 1) if k in chosen]:
        editor = FaceEditor.from_pretrained(args.weights, **options)
        if gates is not None:
            editor.compositor = dataclasses.replace(editor.compositor, person_gates=gates)
        values, edited = figures(editor, photos)
        squares = {n: face_square(editor.detect(ph)[0].box, ph.size) for n, ph in photos.items()}
        results[name] = {"values": values, "edited": edited, "squares": squares}
        row = (
            values["skin_leak"],
            values["glasses_area"],
            values["beyond"],
            np.mean(list(values["spill"].values())),
            np.mean(list(values["in_hair"].values())),
            max(values["beside"].values()),
            values["around"],
        )
        print(f"{name[:38]:38s} " + " ".join(f"{v:14.3f}" if isinstance(v, float) else f"{v:14d}" for v in row))
    per_portrait_table(results, "spill", "hair spill: mean change outside the hair / inside it, in the face square")
    per_portrait_table(results, "in_hair", "mean change inside the hair (levels)", "{:6.1f}")
    per_portrait_table(results, "in_core", "mean change inside the hair's core (levels)", "{:6.1f}")
    per_portrait_table(results, "beside", f"background beside the head: share changed by > {BESIDE_LEVELS} levels")
    per_portrait_table(results, "beside_all", "the same over the whole rectangles (the hair in them too)")
    per_portrait_table(results, "clothes", f"clothes below the jaw: share changed by > {BESIDE_LEVELS} levels")
    if args.sheet:
        print(f"wrote {sheet(photos, results, Path(args.sheet))}")


if __name__ == "__main__":
    main()
