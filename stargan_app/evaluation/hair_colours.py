"""`app.py build-hair-colours`: the colours real hair has, fitted on CelebA's training faces.

Hair pixels come from what the project already knows of the aligned crop: the hair colours' region maps (where hair
lives, from `build-regions`), above the eyes, on faces labelled with exactly one hair colour and neither a hat nor a
bald head. A pixel counts when its colour is far (CIELAB ΔE over HAIR_DISTANCE) from both the face's cheeks (a bare
forehead) and the crop's top corners (background seen through thin or short hair). Only the training ids are read.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from stargan_app.checkpoint import HAIR_COLOURS_FILE, WEIGHTS_DIR
from stargan_app.config import HAIR_COLOURS
from stargan_app.data.celeba import read_split
from stargan_app.imaging import lab_to_srgb, srgb_to_lab
from stargan_app.inference.compositing import RegionMaps, regions_path
from stargan_app.inference.hair_colour import BIN_EDGES, HairColourModel, head_statistics

CROP = 64  # the crop the region maps were estimated on
HAIR_REGION = 0.7  # region-map value above which a pixel of the crop's top is hair on most heads
ABOVE_ROW = 22  # rows of the 64 px crop above the eyebrows
CHEEKS = ((slice(34, 40), slice(16, 22)), (slice(34, 40), slice(42, 48)))  # both cheeks on the 64 px crop
CORNERS = ((slice(0, 5), slice(0, 5)), (slice(0, 5), slice(59, 64)))  # background, on most crops
HAIR_DISTANCE = 15.0  # ΔE from the cheek and background colour below which a pixel is not counted as hair
TYPICAL_DISTANCE = 25.0  # ΔE from the face's median hair colour beyond which a pixel is a stray (skin, background)
EXCLUDED = ("Wearing_Hat", "Bald")
MIN_HEAD_PIXELS = 20  # a face with fewer hair pixels gives no statistics of its own head


def hair_samples(
    data_dir: str, regions: RegionMaps, test_size: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per hair colour, the Lab hair pixels (N, 3) of the training ids, and each face's statistics (F, 3; faces with
    at least MIN_HEAD_PIXELS)."""
    split = read_split(data_dir, test_size)
    images, ids = split.crops(list(range(split.split)), CROP)
    names, values = split.names, split.values[ids].numpy()
    lab = srgb_to_lab(images.permute(0, 2, 3, 1).numpy().astype(np.float32) / 255.0)
    region = regions.union(HAIR_COLOURS, CROP, fallback=torch.zeros(CROP, CROP)).numpy()
    band = (region > HAIR_REGION) & (np.arange(CROP)[:, None] < ABOVE_ROW)
    pixels = lab[:, band]  # (N, P, 3)
    far = np.ones(pixels.shape[:2], bool)
    for places in (CHEEKS, CORNERS):
        reference = np.concatenate([lab[:, r, c].reshape(len(lab), -1, 3) for r, c in places], 1).mean(1)
        far &= np.linalg.norm(pixels - reference[:, None], axis=-1) > HAIR_DISTANCE
    with warnings.catch_warnings():  # a face with no hair pixel left has a NaN median and keeps none
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = np.nanmedian(np.where(far[..., None], pixels, np.nan), 1)
    far &= np.linalg.norm(pixels - typical[:, None], axis=-1) < TYPICAL_DISTANCE
    column = {a: names.index(a) for a in (*HAIR_COLOURS, *EXCLUDED)}
    one_colour = values[:, [column[a] for a in HAIR_COLOURS]].sum(1) == 1
    plain = ~values[:, [column[a] for a in EXCLUDED]].any(1) & one_colour
    samples, heads = {}, {}
    for colour in HAIR_COLOURS:
        chosen = np.flatnonzero(plain & (values[:, column[colour]] > 0))
        samples[colour] = pixels[chosen][far[chosen]]
        counted = [i for i in chosen if far[i].sum() >= MIN_HEAD_PIXELS]
        heads[colour] = np.stack([head_statistics(pixels[i][far[i]]) for i in counted])
    return samples, heads


def build_hair_colours(
    data_dir: str = "../shared/data/celeba-10k",
    out: str = "weights/hair_colours.safetensors",
    test_size: int = 1000,
    regions: str | None = None,
    picture: str | None = None,
) -> Path:
    """Fit the model on the training ids and write it to `out` (and its curves as a PNG to `picture`)."""
    from stargan_app.checkpoint import resolve_weights

    maps = RegionMaps.load(regions or regions_path(resolve_weights(None, "stargan")))
    samples, heads = hair_samples(data_dir, maps, test_size)
    info = {
        "data": f"celeba-10k training ids (the last {test_size} held out, never read): faces with exactly one hair "
        "colour, no hat, not bald",
        "method": f"64 px crops; pixels of the hair colours' region maps over {HAIR_REGION} above row {ABOVE_ROW}, "
        f"ΔE > {HAIR_DISTANCE} from the cheeks and the top corners and < {TYPICAL_DISTANCE} from the face's median "
        "hair; L* quantiles, (a*, b*) mean and spread per "
        f"L* bin of {BIN_EDGES[1] - BIN_EDGES[0]:g}",
        "regions": Path(maps.info.get("path", "")).name,
    }
    model = HairColourModel.fit(samples, heads, info)
    if picture:
        curves_picture(model, picture)
    return model.save(out)


INKS = {"Black_Hair": (0, 0, 0), "Blond_Hair": (200, 150, 0), "Brown_Hair": (130, 70, 20), "Gray_Hair": (140, 140, 140)}


def curves_picture(model: HairColourModel, out: str | Path, panel: int = 300, swatch: int = 24) -> Path:
    """a* and b* against L* for each colour (its curve, the band one spread wide in a lighter line), and below, each
    colour as real hair has it: swatches at its brightness deciles, in the chroma the curve gives there."""
    pad, rows = 30, len(model.colours)
    img = Image.new("RGB", (2 * panel, panel + rows * (swatch + 6) + 10), "white")
    draw = ImageDraw.Draw(img)
    shades = np.arange(2.0, 99.0, 1.0)
    for p, (axis, name) in enumerate(((1, "b* (blue - yellow)"), (0, "a* (green - red)"))):
        left = p * panel

        def at(lightness: float, value: float, left: int = left) -> tuple[float, float]:
            return left + pad + lightness / 100 * (panel - 2 * pad), panel - pad - (value + 5) / 35 * (panel - 2 * pad)

        draw.line([at(0, 0), at(100, 0)], fill=(220, 220, 220))
        draw.text((left + pad, 6), f"{name} against L*, -5..30", fill="black")
        for colour in model.colours:
            ink = INKS.get(colour, (0, 0, 255))
            mean, spread = model.chroma_at(colour, shades)[:, axis], model.spread_at(colour, shades)[:, axis]
            for band in (mean - spread, mean + spread):
                draw.line([at(v, b) for v, b in zip(shades, band)], fill=tuple(c // 3 + 170 for c in ink))
            draw.line([at(v, m) for v, m in zip(shades, mean)], fill=ink, width=2)
    for k, colour in enumerate(model.colours):
        y = panel + k * (swatch + 6)
        draw.text((pad, y + swatch // 3), colour.replace("_", " ").lower(), fill="black")
        for d, rank in enumerate(np.linspace(0.05, 0.95, 10)):
            lightness = float(model.brightness_at(colour, np.array(rank)))
            rgb = lab_to_srgb(np.array([lightness, *model.chroma_at(colour, np.array(lightness))], np.float32))
            x = pad + 110 + d * (swatch + 4)
            draw.rectangle((x, y, x + swatch, y + swatch), fill=tuple(int(round(c * 255)) for c in rgb))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out


CHANGED_LEVEL = 10  # 8-bit levels: a pixel changed less than this in every channel is unchanged
MIN_CHANGED = 50  # photo pixels: an edit that changes fewer changes nothing visible, and fails
PLAUSIBLE_DISTANCE = 2.5  # Mahalanobis distance from real heads of the colour (the 90 % region of three normals)


def hair_colour_plausibility(
    editor,
    data_dir: str,
    limit: int = 40,
    test_size: int = 1000,
    colours: HairColourModel | None = None,
    labelled_source: bool = False,
) -> dict:
    """Served hair-colour edits of the first `limit` held-out CelebA photos (every colour the photo is not labelled
    with): an edit passes when its changed pixels' median L* and mean chroma lie where one head of real hair of the
    target colour lies (HairColourModel.head_distance under PLAUSIBLE_DISTANCE; `colours` is the judge, by default
    the shipped model, fitted on the training ids only). The face's current attributes are the app's reading, as
    served, or with labelled_source the data set's labels. With the hair-colour model every asked colour is
    recoloured from the hair's own pixels; `told` counts the edits that came with a message (no hair showing, or
    the hair already of that colour, which then changes little)."""
    from stargan_app.imaging import load_image

    judge = colours or HairColourModel.load(WEIGHTS_DIR / HAIR_COLOURS_FILE)
    split = read_split(data_dir, test_size)
    names = split.names
    held = [(split.files[i], split.values[i].numpy()) for i in range(split.split, len(split.files))][:limit]
    passed: dict[str, list[bool]] = {c: [] for c in HAIR_COLOURS}
    distances: dict[str, list[float]] = {c: [] for c in HAIR_COLOURS}
    told: dict[str, int] = {c: 0 for c in HAIR_COLOURS}  # edits that came with a message (no hair, already that colour)
    for name, labels in held:
        photo = load_image(split.folder / name)
        prep = editor.prepare(photo)
        before = np.asarray(photo, np.int16)
        source = dict(zip(names, labels.tolist())) if labelled_source else None
        for colour in HAIR_COLOURS:
            if labels[names.index(colour)] > 0:
                continue
            result = editor.edit(prep, {colour: True}, source=source)
            told[colour] += result.message is not None
            after = np.asarray(result.image, np.int16)
            changed = np.abs(after - before).max(-1) >= CHANGED_LEVEL
            distance = (
                judge.head_distance(colour, srgb_to_lab(after[changed] / 255.0))
                if changed.sum() >= MIN_CHANGED
                else float("inf")
            )
            distances[colour].append(distance)
            passed[colour].append(distance < PLAUSIBLE_DISTANCE)
    every = [p for c in HAIR_COLOURS for p in passed[c]]
    result = {
        "plausible": float(np.mean(every)),
        "edits": len(every),
        "per_colour": {c: float(np.mean(passed[c])) for c in HAIR_COLOURS},
        "median_distance": {c: float(np.median(distances[c])) for c in HAIR_COLOURS},
        "unchanged": {c: int(np.isinf(distances[c]).sum()) for c in HAIR_COLOURS},
        "told": told,
        "photos": len(held),
        "colour_model": editor.compositor.hair_colours is not None,
        "source": "data set labels" if labelled_source else "the app's reading",
    }
    per_colour = ", ".join(f"{c} {v:.2f}" for c, v in result["per_colour"].items())
    print(f"plausible hair colours: {result['plausible']:.2f} of {len(every)} edits ({per_colour})")
    return result
