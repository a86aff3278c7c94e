"""Measures of an edit that saturated, high-frequency patches cannot fool (issue: a classifier-driven G learns
textures that move a small CNN, the judge included).

- squeeze: a small blur and a JPEG round trip. A texture that moves a CNN loses its effect there; real bangs and
  glasses keep theirs. The judge reads squeezed edits for the robust transfer.
- KID (unbiased, polynomial kernel, small samples) in the features of a second network: a SmallCNN trained on all 40
  CelebA labels with blur and noise augmentation, not the judge. Per attribute A: KID(edited to have A, real faces
  with A) over KID(the same faces unedited, real faces with A). 1.0: the edit moved nothing towards real faces with A.
- Colour plausibility: per place of the crop, a histogram of the colours real training crops have there; a changed
  pixel whose colour falls in a bin real faces (almost) never show at that place is implausible.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from stargan_app.evaluation.classifier import SEED, SmallCNN, train_classifier
from stargan_app.imaging import gaussian_blur, to_model_range, to_pixels

SQUEEZE_BLUR = 0.6  # sigma in pixels of the 64 px crop
SQUEEZE_JPEG_QUALITY = 75
FEATURE_EPOCHS = 4
FEATURE_RECIPE = "40-labels+blur+noise/v1"  # part of the feature network's cache key
COLOUR_LEVELS = 16  # per channel: 16^3 colour bins
COLOUR_BLOCK = 8  # a place is an 8x8 block of the crop
COLOUR_RARE = 2e-5  # a colour bin holding less than this share of a place's real pixels is implausible there
CHANGED_LEVELS = 8  # a pixel counts as changed when a channel moves by more than this (0..255)


def squeeze(crops: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, S, S) -> uint8: a Gaussian blur of SQUEEZE_BLUR px, then a JPEG round trip."""
    blurred = to_pixels(gaussian_blur(to_model_range(crops), SQUEEZE_BLUR))
    out = []
    for arr in blurred.permute(0, 2, 3, 1).numpy():
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=SQUEEZE_JPEG_QUALITY)
        buf.seek(0)
        with Image.open(buf) as im:
            out.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()))
    return torch.stack(out).permute(0, 3, 1, 2).contiguous() if out else crops.clone()


def blur_and_noise(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The feature network's augmentation: half the batch blurred (sigma up to 1.2 px), every image with Gaussian noise
    of a random strength up to 0.08; x in [-1, 1]."""
    sigma = float(torch.rand(1, generator=gen)) * 1.2
    blurred = torch.where(torch.rand(len(x), 1, 1, 1, generator=gen) < 0.5, gaussian_blur(x, sigma), x)
    noise = torch.randn(x.shape, generator=gen) * torch.rand(len(x), 1, 1, 1, generator=gen) * 0.08
    return (blurred + noise).clamp(-1, 1)


def train_feature_network(images: torch.Tensor, all_labels: torch.Tensor, seed: int = SEED) -> SmallCNN:
    """A SmallCNN on all 40 CelebA labels, balanced BCE, flips, blur and noise: the KID features."""
    return train_classifier(
        images, all_labels, multilabel=True, epochs=FEATURE_EPOCHS, seed=seed, balanced=True, flips=True,
        augment=blur_and_noise,
    )  # fmt: skip


def kid(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased kernel inception distance (squared MMD, kernel (x.y/d + 1)^3) between feature sets (rows)."""
    a, b = a.double(), b.double()
    m, n, d = len(a), len(b), a.size(1)
    if m < 2 or n < 2:
        return float("nan")
    k_aa, k_bb, k_ab = (((x @ y.T) / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return float(within_a + within_b - 2 * k_ab.mean())


class ColourAtlas:
    """Which colours real face crops show at each place: a (places, bins) table of shares from training crops."""

    def __init__(self, crops: torch.Tensor):
        self.size = crops.size(-1)
        bins = self._bins(crops)  # (N, places, pixels per place)
        n_bins = COLOUR_LEVELS**3
        counts = torch.zeros(bins.size(1), n_bins, dtype=torch.float64)
        for place in range(bins.size(1)):
            counts[place] = torch.bincount(bins[:, place].flatten(), minlength=n_bins).double()
        self.share = counts / counts.sum(1, keepdim=True)

    def _bins(self, crops: torch.Tensor) -> torch.Tensor:
        q = crops.long() * COLOUR_LEVELS // 256  # (N, 3, S, S)
        return self._blocks((q[:, 0] * COLOUR_LEVELS + q[:, 1]) * COLOUR_LEVELS + q[:, 2])

    def implausible(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, places, pixels per place) bool: pixels whose colour real faces (almost) never have at their place."""
        bins = self._bins(crops)
        places = torch.arange(bins.size(1)).view(1, -1, 1).expand_as(bins)
        return self.share[places, bins] < COLOUR_RARE

    def implausible_share(self, crops: torch.Tensor, originals: torch.Tensor | None = None) -> float:
        """Share of implausible pixels among those changed from `originals` (of all pixels without originals)."""
        bad = self.implausible(crops)
        if originals is None:
            return float(bad.double().mean())
        moved = self._blocks((crops.int() - originals.int()).abs().amax(1) > CHANGED_LEVELS)
        return float(bad[moved].double().mean()) if moved.any() else 0.0

    def _blocks(self, per_pixel: torch.Tensor) -> torch.Tensor:
        """(N, S, S) -> (N, places, pixels per place)."""
        per_side = self.size // COLOUR_BLOCK
        blocks = per_pixel.reshape(len(per_pixel), per_side, COLOUR_BLOCK, per_side, COLOUR_BLOCK).permute(
            0, 1, 3, 2, 4
        )
        return blocks.reshape(len(per_pixel), per_side * per_side, COLOUR_BLOCK * COLOUR_BLOCK)
