"""How an edit reaches the photo: where each attribute lives (region maps), the gate, the edge-aware (guided)
upsampling of the change and the paste-back.

The generator works on a 64 px crop. Its change, upsampled onto a face hundreds of pixels wide, bleeds across every
edge unless the photo says where the edges are: the guided filter (He, Sun and Tang, "Guided Image Filtering",
ECCV 2010 / TPAMI 2013) fits the change, in each small window of the crop, as a linear function of the crop's own
colours, and evaluates that function on the photo's pixels. A colour change fitted on "dark hair" then stops where
the photo's dark hair stops.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from stargan_app.checkpoint import companion_name, find_beside_weights
from stargan_app.config import LabelSchema
from stargan_app.errors import WeightsError
from stargan_app.face.align import FacePaster, compose_affine, feather_mask, footprint, grid_matrix
from stargan_app.face.segment import FaceMasks, colour_log_odds, square_max
from stargan_app.imaging import elliptical_window, gaussian_blur, smoothstep, srgb_to_lab, tensor_to_pil
from stargan_app.inference.hair_colour import HairColourModel, HairReading
from stargan_app.labels import display_name, is_present

# An image generator's change G(x, c_trg) - G(x, c_src) is blurred (sigma in model pixels) before it reaches the photo:
# that removes the transposed convolutions' checkerboard speckle, which is most of what looks wrong in an edit.
# Without region maps it is also faded from this fraction of the crop's half-width to zero on the inscribed circle,
# so no square of tinted background shows. 0 turns either off. Chosen by `eval stargan` (weights/README.md).
CHANGE_SMOOTHING = 0.6
CHANGE_WINDOW = 0.8
# Guided upsampling: window radius in model px (the bleed of a 64 px change is 1-2 px), and the regulariser on a
# guide in [0, 1] (edges of contrast below about sqrt(eps) are smoothed over, above it they are kept).
GUIDED_RADIUS = 2
GUIDED_EPS = 1e-3
# The guided step runs on at most this many photo pixels (a big face is reduced first; the result is upsampled).
GUIDED_MAX_PIXELS = 250_000
REGIONS_FORMAT = "stargan-app-regions/1"
# Attributes whose region map is multiplied by one of the face's own masks (face/segment.py), and by which: a hair
# colour only reaches this person's pixels off their skin ("hair"). A region map is an average over CelebA, high
# where long hair would be; on a short-haired head that is background. Bangs, hat and earrings were measured with the
# person mask too (benchmarks/local_edits.py): their share of changed background beside the head falls from 1.7% to
# 0.4%, but a hat or earrings that G adds reach past the person's outline by design, which that gate would cut off,
# so they keep their maps alone.
PERSON_GATES: Mapping[str, str] = {a: "hair" for a in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")}
# Attributes whose change is a structure G adds, with no edge in the photo for the guided filter to follow (it left
# a shadow of a moustache): their change is pasted as G drew it, feathered by the attribute's region map. Colour edits
# (hair colours) stay guided, and so do glasses and earrings: G draws dark eye rings and an ear blob, which the filter
# at least tones down. Chosen per attribute on the portrait sheet (training-log.md, 2026-12-07).
DRAWN_ATTRIBUTES = frozenset({"Bangs", "Wearing_Hat", "Mustache"})
# A hair-colour edit recolours the face's whole hair evenly, on a soft matte at the photo's resolution: the hair mask
# (FaceMasks.hair: the person less skin, ears, neck and clothes), sharpened to a smoothstep between HAIR_CONFIDENCE,
# its edges refined by the guided filter with the photo as guide (MATTE_RADIUS mask-frame px, MATTE_EPS), so that the
# hairline and flyaways blend as the photo's colours say; below MATTE_FLOOR it is 0 (the photo stays bit-exact).
# It works on at most RECOLOUR_MAX_PIXELS photo pixels and upsamples its change; the photo's detail is kept.
RECOLOUR_MAX_PIXELS = 60_000
HAIR_CONFIDENCE = (0.4, 0.8)
MATTE_RADIUS = 1.5
MATTE_EPS = 2e-3
MATTE_SUBSAMPLE = (
    2  # the guided filter's linear models are fitted on the grid reduced this many times (fast guided filter)
)
MATTE_FLOOR = 0.02
# On the photo's own pixels a colour at least SKIN_VETO times likelier under this face's skin than under its hair
# (both sampled where the masks are sure, HAIR_SURE) is not hair: the mask frame's soft hairline reaches onto the
# forehead's shaded rim, which the recolour would light up.
SKIN_VETO = 4.0
HAIR_SURE = 0.9
HAIRLINE_REACH = 0.06  # ... within this many crop widths of the skin mask only: a highlight on the crown is hair
MATTE_REACH = (0.05, 0.4)  # ... and never past where the hair mask is this sure (a smoothstep): no background
MATTE_BORDER = 8  # mask-frame px over which the matte fades out at the frame's edge (long hair leaves the frame)
# Hair on less than this share of the aligned crop's area is too little to read or recolour (a hat, a shaved head;
# measured on the portraits: Grace Hopper under her cap 0.016, the short-haired men 0.10-0.13).
NO_HAIR_SHARE = 0.03
# G's part in a hair-colour edit: its own brightness change over the hair, less its mean there, times G_SHAPE, is added
# to the recoloured brightness (L* units): G shapes where highlights and roots go; the amount comes from the pixels.
G_SHAPE = 0.5
HAT_ATTRIBUTE = "Wearing_Hat"  # a face read as wearing one keeps hair edits below its brows (FaceMasks.under_a_hat)
# D must read a hat this surely before hair edits stop at the brows. A false hat leaves the crown its old colour, a
# missed one tints the hat: on held-out ids 9001-10000 (35 hats), 0.8 against 0.5 makes 26 errors instead of 35 with
# the step-17,505 D and 16 instead of 22 with the residual state's (the astronaut's full hair reads 0.57 there).
HAT_CONFIDENCE = 0.8


def wears_a_hat(source: Mapping[str, float] | None) -> bool:
    """Whether the estimate `source` reads a hat surely enough to keep hair edits below the brows."""
    return is_present(source, HAT_ATTRIBUTE, HAT_CONFIDENCE)


# ---------------------------------------------------------------- where each attribute lives


@dataclass(frozen=True)
class RegionMaps:
    """Per attribute, a soft map in [0, 1] on the aligned model-size crop of where that attribute lives."""

    maps: Mapping[str, torch.Tensor]  # attribute -> (S, S) float
    info: Mapping[str, Any] = field(default_factory=dict)  # how they were estimated

    @property
    def size(self) -> int:
        return next(iter(self.maps.values())).size(-1)

    def union(self, attributes: Iterable[str], size: int, fallback: torch.Tensor) -> torch.Tensor:
        """(size, size): the pixel-wise max of the attributes' maps; an attribute without a map counts as `fallback`."""
        out = torch.zeros(size, size)
        for a in attributes:
            m = self.maps.get(a)
            if m is None:
                m = fallback
            elif m.size(-1) != size:
                m = F.interpolate(m[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
            out = torch.maximum(out, m)
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {a: m.detach().float().clone() for a, m in self.maps.items()}  # clone: maps may share memory
        save_file(tensors, str(path), metadata={"format": REGIONS_FORMAT, "info": json.dumps(dict(self.info))})
        return path

    @classmethod
    def load(cls, path: str | Path) -> RegionMaps:
        path = Path(path)
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                maps = {k: f.get_tensor(k).float() for k in f.keys()}
            info = json.loads(meta.get("info") or "{}")
        except Exception as e:  # missing, truncated, not safetensors, bad JSON: all one message for the user
            raise WeightsError(f"{path.name} is not a readable region-maps file ({e}).") from None
        if (
            meta.get("format") != REGIONS_FORMAT
            or not maps
            or any(m.ndim != 2 or m.size(0) != m.size(1) for m in maps.values())
        ):
            raise WeightsError(f"{path.name} is not a region-maps file of this app.")
        return cls(maps, {**info, "path": str(path)})


def regions_path(weights: str | Path) -> Path:
    """Where the region maps of a weights file live: beside it, `NAME.regions.safetensors`."""
    weights = Path(weights)
    return weights.with_name(companion_name(weights.name))


def regions_option(value: str | None) -> str | bool | None:
    """A --regions or --hair-colours value as find_regions and find_hair_colours take it: 'off' -> False (none), None
    -> the file beside the weights."""
    return False if value == "off" else value


def find_regions(weights: str | Path, regions: str | Path | bool | RegionMaps | None = None) -> RegionMaps | None:
    """The maps to use with a weights file: None/True the file beside it if there is one, False none, else that path."""
    return find_beside_weights(weights, regions, regions_path(weights).name, RegionMaps.load, RegionMaps)


def changed_attributes(
    schema: LabelSchema, passes: Sequence[torch.Tensor], reference: Sequence[torch.Tensor]
) -> list[str]:
    """The attributes whose label value an edit changes (passes against the source-label passes); for a hair colour
    switched on that includes the colour it clears."""
    n = schema.cls_dim
    changed = torch.zeros(n, dtype=torch.bool)
    for c, r in zip(passes, reference):
        changed |= (c[:n] - r[:n]).abs() > 0
    return [a for a, on in zip(schema.attributes, changed.tolist()) if on]


# ---------------------------------------------------------------- the guided filter (O(N) box filters)


def _box_sum(x: torch.Tensor, radius: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over a window of +-radius along `dim`, clipped at the ends (a cumulative-sum difference: O(N) for any
    radius, and exactly 0 where the window holds only zeros), and the window lengths."""
    n = x.size(dim)
    zero = torch.zeros_like(x.narrow(dim, 0, 1))
    c = torch.cat([zero, torch.cumsum(x, dim)], dim)
    idx = torch.arange(n)
    hi, lo = (idx + radius + 1).clamp(max=n), (idx - radius).clamp(min=0)
    return c.index_select(dim, hi) - c.index_select(dim, lo), (hi - lo).to(x.dtype)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of (..., H, W) over (2 radius + 1)^2 windows; at the borders over the part inside the image."""
    rows, nh = _box_sum(x, radius, -2)
    both, nw = _box_sum(rows, radius, -1)
    return both / (nh[:, None] * nw[None, :])


def guided_coefficients(
    guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """He et al.'s colour guided filter: per pixel, the window-averaged linear model src ~ a . guide + b.

    guide (G, H, W), src (C, H, W) -> a (C, G, H, W), b (C, H, W). Where src is 0 on a whole window, a and b are
    exactly 0 (nothing leaks into an area without change).
    """
    g, c = guide.size(0), src.size(0)
    mean_i, mean_p = box_mean(guide, radius), box_mean(src, radius)
    cov_ip = box_mean(src[:, None] * guide[None], radius) - mean_p[:, None] * mean_i[None]  # (C, G, H, W)
    cov_ii = box_mean(guide[:, None] * guide[None], radius) - mean_i[:, None] * mean_i[None]  # (G, G, H, W)
    cov_ii = cov_ii + eps * torch.eye(g, dtype=guide.dtype)[:, :, None, None]
    a = torch.linalg.solve(cov_ii.permute(2, 3, 0, 1), cov_ip.permute(2, 3, 1, 0))  # (H, W, G, C)
    a = a.permute(3, 2, 0, 1).contiguous()
    b = mean_p - (a * mean_i[None]).sum(1)
    return box_mean(a.reshape(c * g, *a.shape[2:]), radius).view_as(a), box_mean(b, radius)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """The guided filter's output q = a . guide + b at the guide's own resolution, (C, H, W)."""
    a, b = guided_coefficients(guide, src, radius, eps)
    return (a * guide[None]).sum(1) + b


def fast_guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float, factor: int) -> torch.Tensor:
    """He and Sun's fast guided filter: the linear models fitted on guide and src reduced `factor` times (radius
    too), bilinearly upsampled and evaluated on the full guide; (C, H, W) like guided_filter, factor^2 times cheaper."""
    if factor <= 1:
        return guided_filter(guide, src, radius, eps)
    small = [F.avg_pool2d(t[None], factor, ceil_mode=True)[0] for t in (guide, src)]
    a, b = guided_coefficients(small[0], small[1], max(1, round(radius / factor)), eps)
    size = guide.shape[1:]
    a = F.interpolate(a.flatten(0, 1)[None], size=size, mode="bilinear", align_corners=False)[0].view(
        *a.shape[:2], *size
    )
    b = F.interpolate(b[None], size=size, mode="bilinear", align_corners=False)[0]
    return (a * guide[None]).sum(1) + b


# ---------------------------------------------------------------- composition


@dataclass(frozen=True)
class MaskOnPhoto:
    """A face mask (N, N) on its frame, and the frame's place: crop_to_mask, aligned-crop px -> mask px (2x3)."""

    mask: torch.Tensor
    crop_to_mask: np.ndarray


def crop_mask(masks: FaceMasks, name: str, size: int) -> torch.Tensor:
    """(size, size) one of the face's masks ("hair" or "person") on the aligned crop drawn `size` px wide, grown by
    one crop pixel: on the crop it only keeps the guided filter's fit off the background (a crop pixel straddling
    the hair's edge keeps all its change); the sharp cut is made on the photo (Compositor.photo_gate)."""
    crop_size = masks.crop_size
    grid_to_crop = np.array([[crop_size / size, 0.0, 0.0], [0.0, crop_size / size, 0.0]])
    mask = torch.from_numpy(masks.hair if name == "hair" else masks.person)
    sampled = _sample(mask[None], compose_affine(masks.crop_to_mask, grid_to_crop), (size, size))
    return F.max_pool2d(sampled[None], 3, stride=1, padding=1)[0, 0]


class FaceCanvas:
    """One view of a photo (the photo itself, or a preview square cut from it) and where the aligned face lies in
    it (matrix: view px -> crop px). What does not depend on the edit is computed once per view."""

    def __init__(self, photo: Image.Image, matrix: np.ndarray, crop_size: tuple[int, int]):
        self.photo, self.matrix = photo, np.asarray(matrix, np.float64)
        self.paster = FacePaster(photo, self.matrix, crop_size)


@dataclass(frozen=True)
class Compositor:
    """How a face edit reaches the photo; one per FaceEditor.

    regions: where each attribute lives (None: the fixed ellipse `window`). guided: bring the change to the photo's
    resolution with the guided filter (False: a plain bicubic warp, as before region maps).
    """

    regions: RegionMaps | None = None
    smoothing: float = CHANGE_SMOOTHING
    window: float = CHANGE_WINDOW
    guided: bool = False
    radius: int = GUIDED_RADIUS
    eps: float = GUIDED_EPS
    person_gates: Mapping[str, str] = field(default_factory=lambda: dict(PERSON_GATES))
    drawn: frozenset[str] = DRAWN_ATTRIBUTES  # attributes whose change is pasted as drawn (see DRAWN_ATTRIBUTES)
    hair_colours: HairColourModel | None = None  # the chroma of served hair-colour edits (None: G's own colour)

    def gate(self, attributes: Iterable[str], size: int, masks: FaceMasks | None = None) -> torch.Tensor | None:
        """(size, size) weights of an edit's change: the union of its attributes' regions, each times the face's own
        mask named in person_gates (when there are masks); None when nothing gates it."""
        fallback = elliptical_window(size, self.window) if self.window else torch.ones(size, size)
        if self.regions is None:
            return fallback if self.window else None
        attributes = list(attributes)
        gated = {a: self.person_gates[a] for a in attributes if masks is not None and a in self.person_gates}
        out = self.regions.union([a for a in attributes if a not in gated], size, fallback)
        for name in set(gated.values()):
            maps = self.regions.union([a for a, n in gated.items() if n == name], size, fallback)
            out = torch.maximum(out, maps * crop_mask(masks, name, size))
        return out

    def photo_gate(self, attributes: Iterable[str], masks: FaceMasks | None) -> MaskOnPhoto | None:
        """The face mask that also multiplies the change at the photo's resolution, after the guided upsampling: when
        every attribute of the edit is person-gated (a hat or glasses with a hair colour may reach past the person)."""
        names = {self.person_gates.get(a) for a in attributes}
        if masks is None or not names or None in names:
            return None
        return MaskOnPhoto(torch.from_numpy(masks.hair if names == {"hair"} else masks.person), masks.crop_to_mask)

    def drawn_weight(self, attributes: Iterable[str], size: int) -> torch.Tensor | None:
        """(size, size) share of an edit's change pasted as drawn: the union of the region maps of its drawn
        attributes (None: none of them, all guided)."""
        drawn = [a for a in attributes if a in self.drawn]
        if not drawn or not self.guided:
            return None
        return (
            torch.ones(size, size) if self.regions is None else self.regions.union(drawn, size, torch.ones(size, size))
        )

    def image_change(self, edited: torch.Tensor, reference: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
        """An image generator's change as it reaches the photo: edited - reference, blurred, gated. (B, 3, S, S)."""
        change = gaussian_blur(edited - reference, self.smoothing)
        return change if gate is None else change * gate

    def paste_output(self, canvas: FaceCanvas, crop: Image.Image) -> Image.Image:
        """The generator's output itself pasted over the face (feathered), replacing the photo's detail."""
        return canvas.paster.paste(crop)

    def paste_change(
        self,
        canvas: FaceCanvas,
        change: torch.Tensor,
        reference: torch.Tensor,
        x: torch.Tensor,
        photo_gate: MaskOnPhoto | None = None,
        drawn: torch.Tensor | None = None,
    ) -> Image.Image:
        """An image generator's change (3, S, S; from `image_change`) added to the photo's own pixels.

        reference: G at the source labels (the plain warp pastes reference + change over reference); x: the aligned
        crop, the guide of the guided filter (blurred like the change, so that both hold the same edges); photo_gate:
        a face mask that multiplies the guided change on the photo (see `photo_gate`); drawn: where the change is
        pasted as drawn (see `drawn_weight`).
        """
        if self.guided:
            return self._guided_paste(canvas, change, gaussian_blur(x[None], self.smoothing)[0], photo_gate, drawn)
        return canvas.paster.paste(tensor_to_pil(reference + change), reference_crop=tensor_to_pil(reference))

    def _guided_paste(
        self,
        canvas: FaceCanvas,
        change: torch.Tensor,
        guide: torch.Tensor,
        photo_gate: MaskOnPhoto | None = None,
        drawn: torch.Tensor | None = None,
    ) -> Image.Image:
        """Add a crop-size change (3, S, S, model units) to the photo: the guided filter's linear models (fitted on
        the crop, guide = the crop) evaluated on the photo's own pixels (He and Sun's fast guided filter, used for
        upsampling), over the footprint of the change only, so the rest of the photo stays bit-exact. Where `drawn`
        (S, S in [0, 1]) is 1 the change is pasted as G drew it (bilinear): a new feature (a moustache, a frame, a
        brim) has no edge in the photo for the filter to follow. A big face is reduced to GUIDED_MAX_PIXELS first."""
        size = change.size(-1)
        rim = torch.from_numpy(np.asarray(feather_mask(size, size, canvas.paster.feather), np.float32) / 255.0)
        guide, change = (guide + 1) / 2, change * rim * 127.5  # the guide in [0, 1], the change in 8-bit levels
        a, b = guided_coefficients(guide, change, self.radius, self.eps)
        # Where the guide is flat it says nothing about where the change should stop, and the filter would only blur
        # the change (a moustache fades): there the change keeps its own detail, the part the linear models miss.
        variance = (box_mean(guide.pow(2), self.radius) - box_mean(guide, self.radius).pow(2)).mean(0).clamp(min=0)
        detail = (change - ((a * guide[None]).sum(1) + b)) * (self.eps / (variance + self.eps))
        if drawn is not None:
            a, b, detail = a * (1 - drawn), b * (1 - drawn), detail * (1 - drawn) + change * drawn
        coefficients = torch.cat([a.flatten(0, 1), b, detail])  # (9 + 3 + 3, S, S), all 0 where there is no change
        area = WorkArea.around(canvas, coefficients.abs().amax(0))
        if area is None:
            return canvas.photo.copy()
        photo = area.pixels(canvas.photo)
        sampled = area.sample(coefficients)
        q = (sampled[:9].view(3, 3, *photo.shape[1:]) * photo[None]).sum(1) + sampled[9:12] + sampled[12:]
        if photo_gate is not None:
            q = q * area.sample_mask(photo_gate)
        return area.add_levels(canvas.photo, q.round().permute(1, 2, 0).numpy().astype(np.int16))

    def hair_matte(self, canvas: FaceCanvas, masks: FaceMasks) -> HairMatte | None:
        """This face's hair on `canvas` as a soft matte (see RECOLOUR_MAX_PIXELS), read by the colour model; None
        when there is no model or the hair misses the canvas."""
        if self.hair_colours is None:
            return None
        hair = masks.hair * frame_border(masks.hair.shape[0], MATTE_BORDER)
        rows, cols = np.nonzero(hair > MATTE_FLOOR)
        if not len(rows):
            return None
        scale, shift = masks.crop_to_mask[0, 0], masks.crop_to_mask[:, 2]
        rect = ((cols.min() - shift[0]) / scale, (rows.min() - shift[1]) / scale)
        rect += ((cols.max() + 1 - shift[0]) / scale, (rows.max() + 1 - shift[1]) / scale)
        area = WorkArea.over(canvas, rect, RECOLOUR_MAX_PIXELS)
        if area is None:
            return None
        photo = area.pixels(canvas.photo)
        sampled = area.sample_mask(MaskOnPhoto(torch.from_numpy(hair), masks.crop_to_mask))[0]
        soft = smoothstep(sampled, *HAIR_CONFIDENCE) * self._skin_veto(area, photo, masks, sampled)
        grid_per_mask_px = 1.0 / (scale * math.sqrt(abs(np.linalg.det(area.grid_to_crop[:, :2]))))
        radius = max(1, round(MATTE_RADIUS * grid_per_mask_px))
        matte = fast_guided_filter(photo, soft[None], radius, MATTE_EPS, MATTE_SUBSAMPLE)[0].clamp(0, 1)
        matte = torch.minimum(matte, smoothstep(sampled, *MATTE_REACH))  # refined within the mask's soft edge only
        matte = torch.where(matte > MATTE_FLOOR, matte, torch.zeros(()))
        rgb = photo.permute(1, 2, 0).numpy()
        lab = srgb_to_lab(rgb)
        crop_area = (masks.crop_size * scale) ** 2  # the aligned crop's area in mask-frame px
        visible = float((masks.hair > 0.5).sum()) >= NO_HAIR_SHARE * crop_area
        reading = self.hair_colours.read(lab[(matte > 0.5).numpy()]) if visible else None
        return HairMatte(canvas, area, matte, rgb, lab, reading)

    @staticmethod
    def _skin_veto(area: WorkArea, photo: torch.Tensor, masks: FaceMasks, hair: torch.Tensor) -> torch.Tensor:
        """(h, w) 0 where the photo's colour is SKIN_VETO times likelier this face's skin than its hair, near the skin
        (HAIRLINE_REACH), 1 where it is not (ramping over a factor of 2); all 1 without enough of either."""
        skin = area.sample_mask(MaskOnPhoto(torch.from_numpy(masks.skin), masks.crop_to_mask))[0]
        rgb = photo.permute(1, 2, 0).numpy()
        hair_px, skin_px = rgb[(hair > HAIR_SURE).numpy()], rgb[(skin > HAIR_SURE).numpy()]
        if min(len(hair_px), len(skin_px)) < 64:
            return torch.ones_like(hair)
        odds = torch.from_numpy(colour_log_odds(rgb, hair_px, skin_px).astype(np.float32))
        reach = 2 * round(HAIRLINE_REACH * masks.crop_size * masks.crop_to_mask[0, 0]) + 1
        near = square_max((masks.skin > 0.5).astype(np.float32), reach)
        near = area.sample_mask(MaskOnPhoto(torch.from_numpy(near), masks.crop_to_mask))
        return 1.0 - near[0] * (1.0 - (odds + math.log2(SKIN_VETO)).clamp(0.0, 1.0))

    def recolour_hair(
        self,
        edited: Image.Image,
        matte: HairMatte | None,
        reading: HairReading | None,
        colour: str,
        strength: float = 1.0,
        shape: torch.Tensor | None = None,
    ) -> tuple[Image.Image, str | None]:
        """A hair-colour edit of `edited` (the photo, with any other attribute's change pasted; changed in place): the
        matte's hair recoloured to `colour` by the colour model (HairColourModel.recolour) from the hair's `reading`,
        its brightness shaped by `shape` (S, S on the crop, L*; see g_shape). Pixels off the matte stay bit-exact.
        Also what a person should be told: that no hair shows, or that the head already has that colour."""
        if matte is None or reading is None:
            return edited, NO_HAIR_MESSAGE
        weight = matte.matte.square() * min(1.0, max(0.0, strength))  # a mixed edge pixel keeps more of its own
        if not bool((weight > 0).any()):
            return edited, None
        on_grid = None if shape is None else matte.area.sample(shape[None])[0].numpy()
        before = matte.area.pixels(edited).permute(1, 2, 0).numpy()
        after = self.hair_colours.recolour(matte.rgb, before, weight.numpy(), colour, reading, on_grid, matte.lab)
        levels = np.rint((after - before) * 255.0).astype(np.int16)
        note = None
        if reading.in_range(colour):
            name = display_name(colour).lower().removesuffix(" hair")
            note = f"This hair already reads as {name}: it changed only a little."
        return matte.area.add_levels(edited, levels, in_place=True), note

    @staticmethod
    def g_shape(x: torch.Tensor, change: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor | None:
        """(S, S) G's part in a hair-colour edit: G_SHAPE times the L* change G makes (crop x and change, 3 x S x S in
        model units) over the hair (gate > 0.5), less its mean there, times the gate; None where G changes nothing."""
        if not G_SHAPE or gate is None or not bool((gate > 0.5).any()):
            return None
        before = ((x + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()
        after = ((x + change + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()
        moved = torch.from_numpy(srgb_to_lab(after)[..., 0] - srgb_to_lab(before)[..., 0])
        centred = (moved - moved[gate > 0.5].mean()) * gate
        return G_SHAPE * gaussian_blur(centred[None, None], 1.0)[0, 0]


NO_HAIR_MESSAGE = "Too little hair shows on this face to recolour (a hat, or a shaved head?): it was left as it is."


def frame_border(size: int, width: int) -> np.ndarray:
    """(size, size) 0 on the frame's edge, rising linearly to 1 at `width` px in."""
    ramp = np.clip((np.arange(size, dtype=np.float32) + 0.5) / width, 0, 1)
    ramp = np.minimum(ramp, ramp[::-1])
    return np.minimum(ramp[:, None], ramp[None, :])


@dataclass(frozen=True)
class HairMatte:
    """A face's hair on one canvas: the soft matte on a work area's grid, the photo there, and the hair's reading."""

    canvas: FaceCanvas
    area: WorkArea
    matte: torch.Tensor  # (h, w) in [0, 1]
    rgb: np.ndarray  # (h, w, 3) the photo on the grid, in [0, 1]
    lab: np.ndarray  # (h, w, 3) the same in CIELAB
    reading: HairReading | None  # None: no hair visible


@dataclass(frozen=True)
class WorkArea:
    """The box of the photo a crop-size change reaches, and the grid it is computed on there: every `step`-th photo
    pixel (a big face is reduced to GUIDED_MAX_PIXELS), with its map to crop px."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in photo px
    step: int  # photo px per grid cell
    grid_to_crop: np.ndarray  # 2x3

    @classmethod
    def around(cls, canvas: FaceCanvas, support: torch.Tensor, max_pixels: int = GUIDED_MAX_PIXELS) -> WorkArea | None:
        """The area of the crop pixels where `support` (S, S) is non-zero, on a grid of at most `max_pixels`; None
        when there are none or it misses the photo."""
        rows, cols = torch.nonzero(support).unbind(1)
        if not len(rows):
            return None
        rect = (float(cols.min()), float(rows.min()), float(cols.max()) + 1, float(rows.max()) + 1)
        return cls.over(canvas, rect, max_pixels)

    @classmethod
    def over(cls, canvas: FaceCanvas, rect: tuple[float, ...], max_pixels: int = GUIDED_MAX_PIXELS) -> WorkArea | None:
        """The area of a rectangle (x0, y0, x1, y1 in crop px, which may reach past the crop) on a grid of at most
        `max_pixels`; None when it misses the photo."""
        box = footprint(canvas.matrix, rect, canvas.photo.size)
        if box is None:
            return None
        step = max(1, math.ceil(math.sqrt((box[2] - box[0]) * (box[3] - box[1]) / max_pixels)))
        return cls(box, step, grid_matrix(canvas.matrix, box[:2], step))

    def pixels(self, image: Image.Image) -> torch.Tensor:
        """(3, h, w) in [0, 1]: the area of `image` on the grid."""
        small = image.reduce(self.step, box=self.box) if self.step > 1 else image.crop(self.box)
        return torch.from_numpy(np.asarray(small, np.float32)).permute(2, 0, 1) / 255.0

    @property
    def shape(self) -> tuple[int, int]:
        width, height = self.box[2] - self.box[0], self.box[3] - self.box[1]
        return -(-height // self.step), -(-width // self.step)

    def sample(self, maps: torch.Tensor) -> torch.Tensor:
        """Crop-size maps (K, S, S) on the grid."""
        return _sample(maps, self.grid_to_crop, self.shape)

    def sample_mask(self, mask: MaskOnPhoto) -> torch.Tensor:
        """A face mask (1, h, w) on the grid."""
        return _sample(mask.mask[None], compose_affine(mask.crop_to_mask, self.grid_to_crop), self.shape)

    def add_levels(self, image: Image.Image, levels: np.ndarray, in_place: bool = False) -> Image.Image:
        """`image` with `levels` (h, w, 3 signed 8-bit steps on the grid) added over the area: a copy, or `image`
        itself in_place (a 12 MP copy costs 30 ms)."""
        width, height = self.box[2] - self.box[0], self.box[3] - self.box[1]
        if self.step > 1:  # the two signs as 8-bit images: PIL's bilinear resize of uint8 is the fastest upsampling
            src = (0.0, 0.0, width / self.step, height / self.step)
            up = [
                np.asarray(
                    Image.fromarray(np.clip(s * levels, 0, 255).astype(np.uint8)).resize(
                        (width, height), Image.Resampling.BILINEAR, box=src
                    )
                )
                for s in (1, -1)
            ]
            levels = up[0].astype(np.int16) - up[1]
        out = image if in_place else image.copy()
        region = np.asarray(image.crop(self.box), np.int16) + levels
        out.paste(Image.fromarray(np.clip(region, 0, 255).astype(np.uint8)), self.box[:2])
        return out


def _sample(maps: torch.Tensor, grid_to_crop: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear samples of crop-size maps (K, S, S) at the pixel centres of a (H, W) grid; grid_to_crop maps grid
    coordinates to crop coordinates (both with pixel centres at +0.5). 0 outside the crop."""
    size = maps.size(-1)
    h, w = shape
    # affine_grid wants normalised coordinates on both sides: grid [-1, 1] -> crop [-1, 1]
    scale = np.diag([w / 2.0, h / 2.0])
    theta = np.empty((2, 3))
    theta[:, :2] = grid_to_crop[:, :2] @ scale * (2.0 / size)
    theta[:, 2] = (grid_to_crop[:, :2] @ scale @ np.ones(2) + grid_to_crop[:, 2]) * (2.0 / size) - 1.0
    grid = F.affine_grid(torch.tensor(theta, dtype=torch.float32)[None], [1, 1, h, w], align_corners=False)
    return F.grid_sample(maps[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
