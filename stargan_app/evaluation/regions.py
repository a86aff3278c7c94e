"""`app.py build-regions`: where each attribute lives on the aligned crop, estimated from the training faces.

For every pixel and colour channel, a least-squares fit of the training crops on all the data set's labelled
attributes at once (intercept + 40 CelebA columns). An attribute's coefficient is how much that pixel changes with
the attribute when the others are held fixed, so what travels with it (blond hair with female faces and long hair,
earrings with make-up, a moustache with a beard) is not mistaken for it. A plain positive-minus-negative mean puts
the earrings' map on long hair and the moustache's on the lips; this fit puts them at the ear lobes and upper lip.

Every crop is fitted with its mirror image too (labels do not depend on the side). The map of an attribute: the
colour norm of its coefficient, kept where it is significant (t over 3..6, a smoothstep), smoothed, normalised by
its 99.9th percentile and soft-thresholded, so that the faint, broad
differences (a slightly darker face under black hair) are 0 and where the attribute lives is 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stargan_app.imaging import gaussian_blur, smoothstep
from stargan_app.inference.compositing import RegionMaps, regions_path

T_LOW, T_HIGH = 3.0, 6.0  # |t| below T_LOW is noise; above T_HIGH the difference counts in full
SCALE_QUANTILE = 0.999  # a map is normalised by this quantile (a moustache covers under 1% of the crop)
SOFT_LOW, SOFT_HIGH = 0.3, 0.7  # of that quantile: below is 0, above is 1 (smoothstep between)
CHUNK = 1000  # crops decoded and accumulated at a time (memory stays near 50 MB at 64 px)


@dataclass
class AttributeEffects:
    """The per-pixel least-squares fit of the crops (in [0, 1]) on [1, labels]."""

    beta: torch.Tensor  # (K + 1, 3, S, S): intercept, then one coefficient per label column
    t: torch.Tensor  # (K + 1, 3, S, S): their t values
    mean: torch.Tensor  # (3, S, S): the mean crop
    used: int  # crops that decoded (each also fitted mirrored)


def fit_attribute_effects(folder: Path, files: list[str], labels: np.ndarray, size: int) -> AttributeEffects:
    """Fit chunk by chunk (X'X, X'Y and Y'Y are accumulated), so the crops are never all in memory."""
    from stargan_app.data.celeba import decode_images

    k = labels.shape[1] + 1
    xtx = torch.zeros(k, k, dtype=torch.float64)
    xty = torch.zeros(k, 3 * size * size, dtype=torch.float64)
    yty = torch.zeros(3 * size * size, dtype=torch.float64)
    used = 0
    for start in range(0, len(files), CHUNK):
        imgs, keep = decode_images(folder, files[start : start + CHUNK], size)
        used += len(imgs)
        imgs = torch.cat([imgs, imgs.flip(-1)])  # and every mirror image: the labels do not depend on the side
        y = imgs.reshape(len(imgs), -1).double() / 255.0
        x = torch.from_numpy(labels[start : start + CHUNK][keep]).double().repeat(2, 1)
        x = torch.cat([torch.ones(len(x), 1, dtype=torch.float64), x], 1)
        xtx += x.T @ x
        xty += x.T @ y
        yty += (y * y).sum(0)
    inv = torch.linalg.pinv(xtx)  # pinv: a label that is constant in a small data set must not break the fit
    beta = inv @ xty
    rss = (yty - (beta * xty).sum(0)).clamp(min=0)
    sigma2 = rss / max(1, 2 * used - k)
    se = (sigma2[None] * inv.diagonal()[:, None]).sqrt().clamp(min=1e-12)
    shape = (k, 3, size, size)
    mean = (xty[0] / max(1, 2 * used)).view(3, size, size).float()
    return AttributeEffects(beta.view(shape).float(), (beta / se).view(shape).float(), mean, used)


def region_map(beta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """One attribute's (3, S, S) coefficients and t values -> its (S, S) map in [0, 1] (see the module doc)."""
    sigma = beta.size(-1) / 64  # one pixel at 64 px
    effect = gaussian_blur(beta.norm(dim=0)[None, None], sigma)
    significance = gaussian_blur((t.pow(2).mean(0).sqrt())[None, None], sigma)
    raw = (effect * smoothstep(significance, T_LOW, T_HIGH))[0, 0]
    scale = torch.quantile(raw.flatten(), SCALE_QUANTILE)
    if scale <= 0:
        return torch.zeros_like(raw)
    soft = gaussian_blur(smoothstep(raw / scale, SOFT_LOW, SOFT_HIGH)[None, None], sigma)[0, 0]
    return soft / soft.max().clamp(min=1e-12)


def estimate_regions(
    data_dir: str | Path, attributes: tuple[str, ...], size: int, test_size: int = 1000
) -> tuple[RegionMaps, torch.Tensor]:
    """Region maps of `attributes` from the CelebA layout at data_dir, on the training ids only (all but the last
    test_size), at the model's size; every labelled attribute of the data set is held fixed in the fit. Also
    returns the mean training crop (3, S, S) in [0, 1], the backdrop of `regions_sheet`."""
    from stargan_app.data.celeba import read_split

    celeba = read_split(data_dir, test_size)
    celeba.labels(attributes)  # every attribute is a column of the file
    split, names = celeba.split, celeba.names
    fit = fit_attribute_effects(celeba.folder, celeba.files[:split], celeba.values[:split].numpy(), size)
    maps = {a: region_map(fit.beta[1 + names.index(a)], fit.t[1 + names.index(a)]) for a in attributes}
    info = {
        "method": "per-pixel least squares of crops and their mirrors on all labelled attributes; |coefficient| where "
        f"|t| > {T_LOW}..{T_HIGH}, smoothed, normalised by its {SCALE_QUANTILE} quantile, "
        f"smoothstep {SOFT_LOW}..{SOFT_HIGH}",
        "data": f"{Path(data_dir).name}: ids 1-{split} ({fit.used} crops and their mirrors), "
        f"last {test_size} ids held out",
        "controls": list(names),
        "image_size": size,
    }
    return RegionMaps(maps, info), fit.mean


def build_regions(
    weights: str | None = None,
    data_dir: str = "../shared/data/celeba-10k",
    out: str | None = None,
    test_size: int = 1000,
    sheet: str | None = None,
) -> Path:
    """Estimate the maps for a weights file's attributes and size; write them beside it (or to `out`), and a
    labelled PNG of them to `sheet` if given."""
    from stargan_app.checkpoint import load_weights, resolve_weights

    path = resolve_weights(weights, "stargan")
    config = load_weights(path, kind="stargan").config
    maps, mean = estimate_regions(data_dir, config.labels.attributes, config.image_size, test_size)
    if sheet:
        regions_sheet(maps, sheet, mean_face=mean)
    return maps.save(out or regions_path(path))


def regions_sheet(maps: RegionMaps, out: str | Path, tile: int = 128, mean_face: torch.Tensor | None = None) -> Path:
    """A labelled PNG of the maps, each over a faint mean face when one is given ((3, S, S) in [0, 1])."""
    from PIL import Image, ImageDraw

    from stargan_app.labels import display_name

    head = 18
    names = list(maps.maps)
    sheet = Image.new("RGB", (tile * len(names), tile + head), "white")
    draw = ImageDraw.Draw(sheet)
    for k, a in enumerate(names):
        m = maps.maps[a].clamp(0, 1)
        base = mean_face if mean_face is not None else torch.zeros(3, *m.shape)
        rgb = 0.35 * base + 0.65 * m[None] * torch.tensor([1.0, 0.55, 0.1])[:, None, None] + 0.65 * (1 - m[None]) * base
        arr = (rgb.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        sheet.paste(Image.fromarray(arr).resize((tile, tile), Image.Resampling.BILINEAR), (k * tile, head))
        draw.text((k * tile + 4, 3), display_name(a), fill="black")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out
