"""The colours real hair has, and a served hair-colour edit recoloured onto them.

G decides where hair is and which way its brightness moves; this model decides which colours hair of that brightness
can have. Per hair colour it holds the brightness (CIELAB L*) distribution of real hair of that colour and its chroma
(a*, b*) as a function of brightness, with its spread: near-black and near-white hair are near-neutral whatever their
colour, so a colour is a curve through the (a*, b*) plane, not a point. It is fitted on CelebA's training faces by
`app.py build-hair-colours` (evaluation/hair_colours.py) and ships beside the weights as a small safetensors file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from stargan_app.checkpoint import HAIR_COLOURS_FILE, find_beside_weights
from stargan_app.config import HAIR_COLOURS
from stargan_app.errors import WeightsError
from stargan_app.imaging import gaussian_blur, lab_to_srgb, srgb_to_lab

HAIR_COLOURS_FORMAT = "stargan-app-hair-colours/1"
QUANTILES = 101  # brightness quantiles stored per colour (0, 1, ..., 100 %)
BIN_EDGES = np.linspace(0.0, 100.0, 21, dtype=np.float32)  # L* bins of the chroma curve, 5 units wide
MIN_BIN_PIXELS = 2000  # a bin with fewer samples takes its chroma from its neighbours
# How much of the photo's own fine chroma (strands, highlights) rides on the target colour's chroma curve.
CHROMA_DETAIL = 0.35
DETAIL_SIGMA = 2.0  # px of the working grid: chroma finer than this is the photo's own detail
# A head already has a colour when its hair lies within IN_RANGE of real heads of it (Mahalanobis distance of its head
# statistics, see head_distance) and its L* quantiles lie within IN_RANGE_SHIFT L* of the colour's on average: its
# recolour moves it by about that little, and the edit says so.
IN_RANGE = 2.0
IN_RANGE_SHIFT = 5.0
# A pixel of the matte whose L* lies beyond the hair's own OUTLIER_RANKS quantiles is faded out over OUTLIER_FADE L*:
# at the hairline the matte's soft edge holds skin, which ranks above all the hair and would map to the target's
# brightest (a bright band along the hairline); a strand brighter than the rest still changes.
OUTLIER_RANKS = (2, 98)
OUTLIER_FADE = 8.0
# The hair's ranks map onto this part of the target colour's L* distribution: its brightest few per cent are the skin
# and background CelebA's hair pixels catch, near white on blond and gray (a white band at the hairline).
TARGET_RANKS = (0.0, 0.9)
# One head's hair spans a fraction of its colour's L* spread over all heads (the model's pixels pool heads whose
# median L* alone varies with a standard deviation of 15-20, about as much as the pooled pixels): the ranks map onto
# the colour's distribution drawn towards its median by this factor, or a dark head asked for blond comes out with
# two and a half times its contrast (a bright fringe where thin hair meets the forehead).
HEAD_CONTRAST = 0.6
MIN_READ_PIXELS = 50  # fewer hair pixels than this give no reading: no hair to recolour


@dataclass(frozen=True)
class HairReading:
    """One head of hair as its own pixels show it, against the colour model's real heads."""

    quantiles: np.ndarray  # (QUANTILES,) the hair's L* quantiles, increasing
    statistics: np.ndarray  # (3,) median L*, mean a*, mean b* (head_statistics)
    distances: Mapping[str, float]  # hair colour -> Mahalanobis distance from real heads of it (head_distance)
    shifts: Mapping[str, float]  # hair colour -> mean |L* quantile of this hair - that of one head of it| (L* moved)
    pixels: int  # hair pixels read

    @property
    def colour(self) -> str:
        """The hair colour this head is nearest to: the least distance / IN_RANGE + shift / IN_RANGE_SHIFT (each is
        1 at the edge of a colour's range; the distance alone reads dark brown as black, its chroma spread is wide)."""
        return min(self.distances, key=lambda c: self.distances[c] / IN_RANGE + self.shifts[c] / IN_RANGE_SHIFT)

    def in_range(self, colour: str) -> bool:
        """Whether this head already lies among real heads of `colour` (IN_RANGE, IN_RANGE_SHIFT)."""
        return self.distances[colour] < IN_RANGE and self.shifts[colour] < IN_RANGE_SHIFT

    def ranks(self, lightness: np.ndarray) -> np.ndarray:
        """Each L* value's rank in [0, 1] among this hair's pixels."""
        return np.interp(lightness, self.quantiles, np.linspace(0.0, 1.0, QUANTILES)).astype(np.float32)


@dataclass(frozen=True)
class HairColourModel:
    """Per colour (rows in `colours` order): brightness quantiles, and chroma mean and spread per L* bin."""

    colours: tuple[str, ...]  # the hair-colour attributes, in the label schema's order
    brightness: np.ndarray  # (K, QUANTILES) L* quantiles of real hair of each colour
    chroma: np.ndarray  # (K, B, 2) mean (a*, b*) of real hair of each colour per L* bin
    spread: np.ndarray  # (K, B, 2) standard deviation of (a*, b*) per bin
    # where one head of real hair of each colour lies: mean and covariance over faces of (median L*, mean a*, mean b*)
    face_mean: np.ndarray
    face_cov: np.ndarray  # (K, 3, 3)
    info: Mapping[str, Any] = field(default_factory=dict)  # data and method it was fitted with

    @classmethod
    def fit(
        cls,
        samples: Mapping[str, np.ndarray],
        heads: Mapping[str, np.ndarray],
        info: Mapping[str, Any] | None = None,
    ) -> HairColourModel:
        """From Lab samples (N, 3) of real hair per colour, and per colour the statistics of each face's hair
        (F, 3: median L*, mean a*, mean b*; see `head_statistics`)."""
        colours = tuple(samples)
        brightness = np.stack([np.quantile(samples[c][:, 0], np.linspace(0, 1, QUANTILES)) for c in colours])
        curves = [_chroma_curve(samples[c]) for c in colours]
        chroma = np.stack([m for m, _ in curves])
        spread = np.stack([s for _, s in curves])
        counts = {c: int(len(samples[c])) for c in colours}
        face_mean = np.stack([heads[c].mean(0) for c in colours]).astype(np.float32)
        face_cov = np.stack([np.cov(heads[c].T) for c in colours]).astype(np.float32)
        info = {**(info or {}), "pixels": counts, "heads": {c: len(heads[c]) for c in colours}}
        return cls(colours, brightness.astype(np.float32), chroma, spread, face_mean, face_cov, info)

    def _row(self, colour: str) -> int:
        if colour not in self.colours:
            raise KeyError(f"no hair colour {colour!r} in this model (it has {', '.join(self.colours)})")
        return self.colours.index(colour)

    def brightness_at(self, colour: str, ranks: np.ndarray) -> np.ndarray:
        """The L* of real hair of `colour` at quantile `ranks` in [0, 1]."""
        return np.interp(ranks, np.linspace(0, 1, QUANTILES), self.brightness[self._row(colour)]).astype(np.float32)

    def head_brightness(self, colour: str, ranks: np.ndarray) -> np.ndarray:
        """The L* one head of real hair of `colour` has at quantile `ranks` in [0, 1]: the colour's distribution over
        TARGET_RANKS, drawn towards its median by HEAD_CONTRAST."""
        lo, hi = TARGET_RANKS
        median = self.brightness_at(colour, np.array(0.5))
        return median + HEAD_CONTRAST * (self.brightness_at(colour, lo + (hi - lo) * np.asarray(ranks)) - median)

    def chroma_at(self, colour: str, lightness: np.ndarray) -> np.ndarray:
        """(..., 2) the curve's (a*, b*) of `colour` at L* `lightness`."""
        return _on_curve(self.chroma[self._row(colour)], lightness)

    def spread_at(self, colour: str, lightness: np.ndarray) -> np.ndarray:
        """(..., 2) the spread of real hair's (a*, b*) about the curve at L* `lightness`."""
        return _on_curve(self.spread[self._row(colour)], lightness)

    def head_distance(self, colour: str, lab: np.ndarray) -> float:
        """Mahalanobis distance of one head of hair's Lab pixels (N, 3) from real heads of `colour`."""
        row = self._row(colour)
        offset = head_statistics(lab) - self.face_mean[row]
        return float(np.sqrt(offset @ np.linalg.solve(self.face_cov[row], offset)))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name), np.float32)) for name in _ARRAYS}
        metadata = {"format": HAIR_COLOURS_FORMAT, "colours": json.dumps(list(self.colours))}
        save_file(tensors, str(path), metadata={**metadata, "info": json.dumps(dict(self.info))})
        return path

    @classmethod
    def load(cls, path: str | Path, colours: tuple[str, ...] = HAIR_COLOURS) -> HairColourModel:
        """The model in `path`; refused unless it has its metadata and was fitted on exactly `colours`."""
        path = Path(path)
        try:
            with safe_open(str(path), framework="np", device="cpu") as f:
                meta = f.metadata() or {}
                arrays = {k: f.get_tensor(k) for k in f.keys()}
            fitted_on = tuple(json.loads(meta.get("colours") or "[]"))
            info = json.loads(meta.get("info") or "{}")
        except Exception as e:  # missing, truncated, not safetensors, bad JSON: one message for the user
            raise WeightsError(f"{path.name} is not a readable hair-colour model ({e}).") from None
        if meta.get("format") != HAIR_COLOURS_FORMAT or set(arrays) != set(_ARRAYS):
            raise WeightsError(f"{path.name} is not a hair-colour model of this app (no format or arrays).")
        if fitted_on != tuple(colours):
            raise WeightsError(f"{path.name} was fitted on the colours {fitted_on}, not this model's {tuple(colours)}.")
        model = cls(fitted_on, *(arrays[name].astype(np.float32) for name in _ARRAYS), {**info, "path": str(path)})
        bins = len(BIN_EDGES) - 1
        if model.brightness.shape != (len(fitted_on), QUANTILES) or model.chroma.shape != (len(fitted_on), bins, 2):
            raise WeightsError(f"{path.name} has arrays of the wrong shape for a hair-colour model.")
        return model

    def read(self, lab: np.ndarray) -> HairReading | None:
        """The reading of one head of hair from its Lab pixels (N, 3); None with fewer than MIN_READ_PIXELS."""
        if len(lab) < MIN_READ_PIXELS:
            return None
        quantiles = np.quantile(lab[:, 0], np.linspace(0.0, 1.0, QUANTILES)).astype(np.float32)
        quantiles = quantiles + np.linspace(0.0, 1e-3, QUANTILES, dtype=np.float32)  # strictly increasing for interp
        distances = {c: self.head_distance(c, lab) for c in self.colours}
        ranks = np.linspace(0.0, 1.0, QUANTILES)
        shifts = {c: float(np.abs(self.head_brightness(c, ranks) - quantiles).mean()) for c in self.colours}
        return HairReading(quantiles, head_statistics(lab), distances, shifts, len(lab))

    def recolour(
        self,
        photo: np.ndarray,
        edited: np.ndarray,
        weight: np.ndarray,
        colour: str,
        reading: HairReading,
        shape: np.ndarray | None = None,
        lab: np.ndarray | None = None,
    ) -> np.ndarray:
        """The edited pixels (H, W, 3 in [0, 1]) with the hair recoloured to `colour` where `weight` (H, W in [0, 1])
        says hair is, from the photo's own pixels (H, W, 3) and the hair's reading.

        Brightness: each pixel's L* goes to the target colour's real L* at the same rank among this hair's pixels
        (quantile mapping: dark brown asked for black becomes black, and highlights and strands keep their order),
        plus `shape` (H, W, L* units; G's own brightness change, see Compositor.recolour_hair). Chroma: the colour's
        curve at that brightness plus CHROMA_DETAIL of the photo's own fine chroma. A head already of that colour
        moves about as little as it differs from it. Blended into `edited` by `weight`, less where a pixel is far
        brighter or darker than the hair (OUTLIER_FADE).
        """
        lab = srgb_to_lab(photo) if lab is None else lab  # the photo's CIELAB, when the caller has it
        low, high = reading.quantiles[list(OUTLIER_RANKS)]
        outside = np.maximum(np.maximum(low - lab[..., 0], lab[..., 0] - high), 0.0)
        weight = weight * np.clip(1.0 - outside / OUTLIER_FADE, 0.0, 1.0)
        lightness = self.head_brightness(colour, reading.ranks(lab[..., 0]))
        if shape is not None:
            lightness = np.clip(lightness + shape, 0.0, 100.0)
        photo_ab = torch.from_numpy(np.ascontiguousarray(lab[..., 1:].transpose(2, 0, 1)))
        fine = (photo_ab - gaussian_blur(photo_ab[None], DETAIL_SIGMA)[0]).numpy().transpose(1, 2, 0)
        ab = self.chroma_at(colour, lightness) + CHROMA_DETAIL * fine
        target = lab_to_srgb(np.concatenate([lightness[..., None], ab], -1))
        return edited + weight[..., None] * (target - edited)


_ARRAYS = ("brightness", "chroma", "spread", "face_mean", "face_cov")


def head_statistics(lab: np.ndarray) -> np.ndarray:
    """(3,) one head of hair's median L*, mean a* and mean b*, from its Lab pixels (N, 3)."""
    return np.array([np.median(lab[:, 0]), lab[:, 1].mean(), lab[:, 2].mean()], np.float32)


def _chroma_curve(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2) mean and spread of (a*, b*) per L* bin; thin bins are interpolated from the populated ones."""
    index = np.clip(np.digitize(lab[:, 0], BIN_EDGES) - 1, 0, len(BIN_EDGES) - 2)
    counts = np.bincount(index, minlength=len(BIN_EDGES) - 1)
    full = np.flatnonzero(counts >= MIN_BIN_PIXELS)
    if not len(full):
        raise ValueError(f"too few hair samples to fit a chroma curve ({len(lab)} pixels)")
    centres = (BIN_EDGES[:-1] + BIN_EDGES[1:]) / 2
    mean = np.zeros((len(centres), 2), np.float32)
    spread = np.zeros((len(centres), 2), np.float32)
    for b in full:
        ab = lab[index == b, 1:]
        mean[b], spread[b] = ab.mean(0), ab.std(0)
    for k in range(2):
        mean[:, k] = np.interp(centres, centres[full], mean[full, k])
        spread[:, k] = np.interp(centres, centres[full], spread[full, k])
    return _smooth(mean), _smooth(spread)


def _smooth(table: np.ndarray) -> np.ndarray:
    """A [1, 2, 1] / 4 filter along the bins (ends repeated): neighbouring brightnesses have neighbouring chroma."""
    padded = np.concatenate([table[:1], table, table[-1:]])
    return ((padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4).astype(np.float32)


def _on_curve(table: np.ndarray, lightness: np.ndarray) -> np.ndarray:
    """A per-bin table (B, 2) read at L* `lightness` (linear between bin centres)."""
    centres = (BIN_EDGES[:-1] + BIN_EDGES[1:]) / 2
    return np.stack([np.interp(lightness, centres, table[:, k]) for k in range(2)], -1).astype(np.float32)


def find_hair_colours(
    weights: str | Path, hair_colours: str | Path | bool | HairColourModel | None = None
) -> HairColourModel | None:
    """The hair-colour model to use with a weights file: None/True the shipped file beside it if there is one, False
    none, else that path (or model)."""
    return find_beside_weights(weights, hair_colours, HAIR_COLOURS_FILE, HairColourModel.load, HairColourModel)
