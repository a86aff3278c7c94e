"""Per-face masks that keep an edit on its person: who in the photo is this face's person (MediaPipe selfie
segmentation) and where the face's skin is (MediaPipe face landmarks, plus the skin's own colour).

Both models are the vendored .tflite files in face/models (Apache-2.0, see NOTICE there), run by LiteRT
(ai-edge-litert) on one thread. Nothing is downloaded. Without the runtime, `load_mask_model` logs one line and
returns None, and edits are gated as before (by the region maps alone).

The masks live on a square frame centred on the face's aligned crop, MASK_SPAN crop widths wide and MASK_SIZE px,
so they line up with the crop (and, through its matrix, with the photo) by one fixed scale and shift.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from stargan_app.errors import NoFaceError
from stargan_app.face.align import compose_affine, warp_square

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().with_name("models")
MODEL_FILES = {  # vendored file -> sha256 (models/extract.py reproduces them from the mediapipe 0.10.21 wheel)
    "selfie_segmentation.tflite": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    "face_landmark.tflite": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
}
PERSON_INPUT = 256  # the selfie model's input side (RGB in [0, 1])
LANDMARK_INPUT = 192  # the face landmark model's input side (RGB in [0, 1])
MASK_SIZE = 256  # side of the mask frame in px (the person model runs on it directly)
MASK_SPAN = 1.5  # the mask frame spans this many aligned-crop widths, centred on the crop
# Where the landmark model looks, in crop widths: centre x, centre y, side (MediaPipe's face ROI: the face box
# enlarged 1.5x; the detector's face box lies at x 0.24-0.72, y 0.27-0.90 of the aligned crop).
LANDMARK_VIEW = (0.48, 0.56, 0.8)
FACE_CENTRE = (0.48, 0.58)  # a point of the face, in crop widths: the seed of the person's connected part
MIN_FACE_SCORE = 0.5  # below this the landmark model says "no face here", and no skin is derived from it
# MediaPipe's face mesh silhouette, in order (FACEMESH_FACE_OVAL), and the eyebrows' top points.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
BROWS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
BROW_OUTLINES = ((70, 63, 105, 66, 107, 55, 65, 52, 53, 46), (336, 296, 334, 293, 300, 276, 283, 282, 295, 285))
CHEEKS = (50, 101, 205, 187, 280, 330, 425, 411)  # points on both cheeks, where skin is least often covered
FACE_SIDES = (234, 454)
NOSE_TIP = 1
# A pixel of this person counts as skin when its chromaticity (r, g over r + g + b) lies within SKIN_SPREAD robust
# standard deviations (plus SKIN_FLOOR) of the bare forehead's, and its brightness within SKIN_BRIGHTNESS times the
# forehead's (light and shade change the brightness of skin far more than its chromaticity).
SKIN_SPREAD = 2.0
SKIN_FLOOR = 0.01
SKIN_REACH = 2.5  # ... and fades out at this many (a highlight on skin is less saturated)
SKIN_BRIGHTNESS = (0.45, 1.6)
FACE_MARGIN = 0.04  # the face oval below the brows is grown by this fraction of the face's width (its own edge)
BARE_BRIGHTNESS = (0.8, 1.25)  # a bare forehead is about as bright as the cheeks (bangs are darker or lighter)
# The ears: an ellipse beside each side point of the oval, its centre this far out and down, and its half-axes, in
# face widths.
EAR_OFFSET, EAR_DROP, EAR_AXES = 0.08, 0.08, (0.10, 0.20)
# Under a hat, hair edits fade in over this many face widths, down to the top of the eyebrows (see under_a_hat).
HAT_FADE = 0.08
EAR_TOLERANCE = 2.0  # an ear is skin within this many times the cheeks' chromaticity tolerance (it is in shade)
# The per-image colour model that tells hair from skin where colour decides (see skin_odds): colour densities on a
# COLOUR_BINS^3 RGB grid, of the cheeks (skin) and of this person's pixels in a ring round the head above the nose
# (HAIR_RING: from the face oval grown by this many face widths out to the oval scaled by this factor; mostly hair,
# or a hat, and the ears). A pixel is skin when its colour is at least SKIN_ODDS times as likely under the cheeks as
# under the ring (fading out over a factor of 2 below: a colour both share stays skin). When most of the crown's
# pixels (the ring above the face) are at least half as likely under the cheeks (a bald head), there is no hair
# colour to learn from and colour decides as before.
COLOUR_BINS = 32
HAIR_RING = (0.08, 1.6)
SKIN_ODDS = 0.8
MIN_HAIR_SAMPLES = 64
BALD_SHARE = 0.5
# Below the eyes, the face oval grown by LOWER_FACE face widths is never hair (stubble, the jaw's shadow), and below the
# jaw line neither is the oval grown by BEARD face widths (a beard, the neck; long hair there fades out).
# Hair holes above the eyes narrower than HOLE_FILL face widths (highlights the skin's colour model took for skin)
# are hair.
LOWER_FACE = 0.12
BEARD = 0.35
BROW_MARGIN = 0.03  # the eyebrows, grown by this many face widths, are never head hair either
HOLE_FILL = 0.25
FILL_MIN_HAIR = 0.5  # ... on a head with at least this many face widths squared of hair above the eyes
# Below the jaw line (the row of the jaw's corners, JAW) this person is clothes, neck or hair. A pixel there stays hair
# only when its colour is at least CLOTHES_ODDS times likelier under the hair above the brows than under this person's
# pixels from CLOTHES_DROP face widths below the chin down (clothes, neck, and any long hair that falls there), fading
# out over a factor of 2; it fades in over JAW_FADE face widths below the jaw line. Without clothes samples the rows
# below stay hair; without hair samples none of them is.
JAW = (172, 397)
CHIN = 152
JAW_FADE = 0.1
CLOTHES_DROP = 0.25
CLOTHES_ODDS = 4.0


class MaskModel(Protocol):
    """What the masks need from a model runtime (LiteRTMaskModel; tests use a stand-in)."""

    def person(self, rgb: np.ndarray) -> np.ndarray:
        """(PERSON_INPUT, PERSON_INPUT, 3) float32 RGB in [0, 1] -> (PERSON_INPUT, PERSON_INPUT) P(person)."""
        ...

    def face_landmarks(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(LANDMARK_INPUT, LANDMARK_INPUT, 3) float32 RGB in [0, 1] -> ((468, 2) points in input px, P(face))."""
        ...


class LiteRTMaskModel:
    """The vendored MediaPipe models on LiteRT's interpreter (XNNPACK, `threads` CPU threads)."""

    def __init__(self, models_dir: Path = MODELS_DIR, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter  # ImportError: see load_mask_model

        def interpreter(name: str) -> Interpreter:
            path = Path(models_dir) / name
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing")
            model = Interpreter(model_path=str(path), num_threads=threads)
            model.allocate_tensors()
            return model

        self._person, self._landmarks = interpreter("selfie_segmentation.tflite"), interpreter("face_landmark.tflite")
        self._lock = threading.Lock()  # an interpreter holds its tensors: one call at a time
        self.person(np.zeros((PERSON_INPUT, PERSON_INPUT, 3), np.float32))  # the first run sets up XNNPACK (~0.3 s):
        self.face_landmarks(np.zeros((LANDMARK_INPUT, LANDMARK_INPUT, 3), np.float32))  # pay it now, not on an edit

    @staticmethod
    def _run(model, rgb: np.ndarray) -> list[np.ndarray]:
        model.set_tensor(model.get_input_details()[0]["index"], np.ascontiguousarray(rgb, np.float32)[None])
        model.invoke()
        return [model.get_tensor(d["index"]) for d in model.get_output_details()]

    def person(self, rgb: np.ndarray) -> np.ndarray:
        with self._lock:
            (out,) = self._run(self._person, rgb)
        return out.reshape(PERSON_INPUT, PERSON_INPUT)

    def face_landmarks(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        with self._lock:
            outs = self._run(self._landmarks, rgb)
        points = next(o for o in outs if o.size == 468 * 3).reshape(468, 3)[:, :2]
        logit = float(next(o for o in outs if o.size == 1).ravel()[0])
        return points.astype(np.float64), 1.0 / (1.0 + math.exp(-logit))


def load_mask_model(models_dir: Path = MODELS_DIR) -> MaskModel | None:
    """The LiteRT runtime on the vendored models, or None (one log line) when the runtime or a file is missing."""
    try:
        return LiteRTMaskModel(models_dir)
    except ImportError:
        log.warning("ai-edge-litert is not installed: edits are gated by the region maps only (no person mask)")
    except (OSError, ValueError, RuntimeError) as e:
        log.warning("the person/skin mask models could not be loaded (%s): edits are gated by the region maps only", e)
    return None


@dataclass(frozen=True, eq=False)
class FaceMasks:
    """One face's masks on its mask frame (MASK_SIZE px square; crop_to_mask: aligned-crop px -> mask px)."""

    person: np.ndarray  # (N, N) float32 in [0, 1]: this face's person (the connected part holding the face)
    skin: np.ndarray  # (N, N) float32 in [0, 1]: the face's skin (face oval below the brows, and skin-coloured px)
    crop_to_mask: np.ndarray  # 2x3
    crop_size: int  # the aligned crop's side those crop px refer to (the model's image size)
    landmarks: np.ndarray | None = None  # (468, 2) in mask px, when the landmark model saw a face
    hair_rows: np.ndarray | None = None  # (N, 1) in [0, 1]: the rows a hair edit may reach (None: all; a hat)
    not_hair: np.ndarray | None = None  # (N, N) in [0, 1]: lower face, neck and clothes, never hair (None: none)

    @property
    def hair(self) -> np.ndarray:
        """Where a hair edit may reach: this person, off their skin, lower face and clothes (and below a hat, see
        under_a_hat)."""
        hair = self.person * (1.0 - self.skin)
        if self.not_hair is not None:
            hair = hair * (1.0 - self.not_hair)
        return hair if self.hair_rows is None else hair * self.hair_rows

    def under_a_hat(self) -> FaceMasks:
        """These masks for a face that wears a hat. A hat is this person and not skin, so a hair colour would tint
        it: hair edits reach only the rows below the top of the eyebrows (fading in over HAT_FADE face widths), where
        hair under a hat shows. The frame is upright with the face, so rows are the face's own vertical. Unchanged
        without landmarks."""
        if self.landmarks is None:
            return self
        width = float(np.hypot(*(self.landmarks[FACE_SIDES[0]] - self.landmarks[FACE_SIDES[1]])))
        fade = max(HAT_FADE * width, 1.0)
        rows = np.arange(self.person.shape[0], dtype=np.float32)[:, None] + 0.5
        start = self.landmarks[list(BROWS), 1].min() - fade
        return replace(self, hair_rows=np.clip((rows - start) / fade, 0.0, 1.0).astype(np.float32))


def mask_frame(crop_size: int, span: float = MASK_SPAN, size: int = MASK_SIZE) -> np.ndarray:
    """2x3 aligned-crop px -> mask px: a square `span` crop widths wide, centred on the crop, `size` px."""
    k = size / (span * crop_size)
    shift = (span - 1) / 2 * crop_size * k
    return np.array([[k, 0.0, shift], [0.0, k, shift]])


def _grow(mask: np.ndarray) -> np.ndarray:
    """Binary dilation by one pixel (8-neighbourhood)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= out[:, :-1].copy()
    out[:, :-1] |= out[:, 1:].copy()
    return out


def connected_part(prob: np.ndarray, seed: tuple[float, float], step: int = 4) -> np.ndarray:
    """prob where its > 0.5 part is connected to `seed` (x, y in px), grown by `step` px; 0 elsewhere. Connectivity
    is traced on a grid `step` px coarse (a geodesic dilation: a few ms). All of prob when the seed is not on the
    person (the model missed them: better the region maps alone than none of the person)."""
    n = prob.shape[0] // step
    coarse = prob[: n * step, : n * step].reshape(n, step, n, step).max((1, 3)) > 0.5
    x, y = (int(np.clip(v // step, 0, n - 1)) for v in seed)
    if not coarse[y, x]:
        return np.ones_like(prob)
    part = np.zeros_like(coarse)
    part[y, x] = True
    while True:
        grown = _grow(part) & coarse
        if np.array_equal(grown, part):
            break
        part = grown
    full = np.zeros(prob.shape, bool)
    full[: n * step, : n * step] = np.repeat(np.repeat(_grow(part), step, 0), step, 1)
    return prob * full


def _polygon(points: np.ndarray, size: int, blur: float, grow: int = 0) -> np.ndarray:
    """(size, size) in [0, 1]: the filled polygon, grown by about `grow` px (a thick outline), feathered by `blur`."""
    img = Image.new("L", (size, size), 0)
    draw, corners = ImageDraw.Draw(img), [tuple(p) for p in points.tolist()]
    draw.polygon(corners, fill=255)
    if grow > 0:  # polygon()'s own outline width is not drawn by every Pillow: a closed line with round joints
        draw.line([*corners, corners[0], corners[1]], fill=255, width=2 * grow + 1, joint="curve")
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(img, np.float32) / 255.0


def _chromaticity(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 2) r, g over r + g + b, and (...) the brightness r + g + b."""
    total = rgb.sum(-1)
    return rgb[..., :2] / np.maximum(total, 1e-3)[..., None], total


def _skin_range(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Median chromaticity of (K, 3) samples, its tolerance (SKIN_SPREAD robust deviations + SKIN_FLOOR), median
    brightness."""
    chroma, brightness = _chromaticity(samples)
    median = np.median(chroma, 0)
    return (
        median,
        SKIN_SPREAD * 1.4826 * np.median(np.abs(chroma - median), 0) + SKIN_FLOOR,
        float(np.median(brightness)),
    )


def _chroma_match(rgb: np.ndarray, chroma: np.ndarray, tolerance: np.ndarray, reach: float) -> np.ndarray:
    """(N, N) in [0, 1]: 1 within `tolerance` of `chroma`, down to 0 at `reach` tolerances."""
    distance = (np.abs(_chromaticity(rgb)[0] - chroma) / tolerance).max(-1)
    return np.clip((reach - distance) / (reach - 1.0), 0.0, 1.0)


def _bin_index(rgb: np.ndarray) -> np.ndarray:
    """The COLOUR_BINS^3 RGB grid cell of each colour (..., 3) in [0, 1], as a flat index."""
    q = np.clip((rgb * COLOUR_BINS).astype(np.int32), 0, COLOUR_BINS - 1)
    return (q[..., 0] * COLOUR_BINS + q[..., 1]) * COLOUR_BINS + q[..., 2]


def colour_density(samples: np.ndarray) -> np.ndarray:
    """(COLOUR_BINS^3,) the density of (K, 3) colours in [0, 1] on the RGB grid, smoothed over neighbouring cells
    ([1, 2, 1] / 4 along each axis, twice) so a colour a cell or two away from the samples still counts; sums to 1."""
    shape = (COLOUR_BINS,) * 3
    hist = np.bincount(_bin_index(samples), minlength=COLOUR_BINS**3).astype(np.float64).reshape(shape)
    for axis in range(3):
        for _ in range(2):
            padded = np.pad(hist, [(1, 1) if a == axis else (0, 0) for a in range(3)])
            lo, mid, hi = (np.take(padded, np.arange(k, k + COLOUR_BINS), axis) for k in range(3))
            hist = (lo + 2 * mid + hi) / 4
    return (hist / max(hist.sum(), 1e-12)).ravel()


def colour_log_odds(rgb: np.ndarray, samples: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(...) log2 of how much likelier each colour of `rgb` (..., 3 in [0, 1]) is under the colour density of
    `samples` (K, 3) than under that of `others` (see colour_density; an unseen colour: even odds)."""
    floor = 0.1 / COLOUR_BINS**3
    return np.log2((colour_density(samples) + floor) / (colour_density(others) + floor))[_bin_index(rgb)]


def skin_odds(
    rgb: np.ndarray, skin_samples: np.ndarray, hair_samples: np.ndarray, crown: np.ndarray
) -> np.ndarray | None:
    """(N, N) log2 of how much likelier each pixel's colour is under the skin samples' colour density than under the
    hair ring's (see COLOUR_BINS); None when the ring has too few pixels, or when most of the crown's pixels (the ring
    above the face) are at least half as likely skin as hair: a bald head, with no hair colour to learn."""
    if len(hair_samples) < MIN_HAIR_SAMPLES or len(skin_samples) < 16:
        return None
    skin, hair = colour_density(skin_samples), colour_density(hair_samples)
    floor = 0.1 / COLOUR_BINS**3  # an unseen colour: even odds

    def log_odds(index: np.ndarray) -> np.ndarray:
        return np.log2((skin[index] + floor) / (hair[index] + floor))

    crown = crown if len(crown) >= 16 else hair_samples
    if (log_odds(_bin_index(crown)) > -1.0).mean() > BALD_SHARE:
        return None
    return log_odds(_bin_index(rgb)).astype(np.float32)


def skin_weight(log_odds: np.ndarray) -> np.ndarray:
    """1 where a colour is at least SKIN_ODDS times likelier as skin than as hair, fading to 0 at half that."""
    return np.clip(log_odds - math.log2(SKIN_ODDS) + 1.0, 0.0, 1.0)


def skin_mask(rgb: np.ndarray, person: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N, N) skin of a face whose 468 landmarks (mask px) lie on `rgb` (N, N, 3 in [0, 1]): the face oval below the
    eyebrows, grown by FACE_MARGIN; the ears (beside the oval, of the cheeks' chromaticity: hair over them stays out);
    and, when the forehead above the brows is bare (the cheeks' chromaticity and about their brightness), the forehead
    and every pixel of this person of the forehead's chromaticity and about its brightness (a bald scalp, the neck).
    Bangs over the forehead are not skin, and then nothing else is judged by colour (blond hair can have a skin's).

    Above the eyes, where hair meets the face, the per-image colour model (skin_odds: the bare skin's colours against
    those of a ring round the head) also decides the oval's edge and the colour-matched pixels: hair there with a
    skin's chromaticity (white, grey, blond) is hair when its colour is the ring's more than the cheeks'. The ears,
    the forehead within the oval and everything below the eyes are as before."""
    size = rgb.shape[0]
    oval = landmarks[list(FACE_OVAL)]
    brows = landmarks[list(BROWS), 1]
    lower, upper = oval.copy(), oval.copy()
    lower[:, 1] = np.maximum(lower[:, 1], brows.max())  # the oval cut at the eyebrows
    upper[:, 1] = np.minimum(upper[:, 1], brows.min())  # the forehead: the oval above the eyebrows
    width = float(np.hypot(*(landmarks[FACE_SIDES[0]] - landmarks[FACE_SIDES[1]])))
    margin = round(FACE_MARGIN * width)
    face = _polygon(lower, size, 1.0, grow=margin)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    cheeks = np.zeros((size, size), bool)
    for x, y in landmarks[list(CHEEKS)]:
        cheeks |= (xs - x) ** 2 + (ys - y) ** 2 < (0.06 * width) ** 2
    forehead = _polygon(upper, size, 0.0) > 0.5
    forehead &= ys > (brows.min() + oval[:, 1].min()) / 2  # its lower half: the hairline is no part of the test
    if cheeks.sum() < 16:
        return face
    cheek_range = _skin_range(rgb[cheeks])
    cheek_chroma, cheek_tolerance, _ = cheek_range
    bare = _bare_forehead(rgb[forehead], cheek_range) if forehead.sum() >= 16 else None
    ears = _ears(landmarks, width, xs, ys)
    # the colour model: skin from the cheeks (and the bare forehead), hair from the ring round the head above the nose
    centre, eye_row = oval.mean(0), landmarks[list(FACE_SIDES), 1].min()
    ring = _polygon(centre + (oval - centre) * HAIR_RING[1], size, 0.0) > 0.5
    ring &= _polygon(oval, size, 0.0, grow=round(HAIR_RING[0] * width)) < 0.5
    ring &= (ys < landmarks[NOSE_TIP, 1]) & (person > 0.5)
    skin_samples = rgb[cheeks | forehead] if bare is not None else rgb[cheeks]
    log_odds = skin_odds(rgb, skin_samples, rgb[ring], rgb[ring & (ys < oval[:, 1].min())])
    skin_like = None
    if log_odds is not None:  # it decides only above the eyes: lower, the ears' and neck's shade is not hair
        skin_like = np.where(ys < eye_row, skin_weight(log_odds), 1.0).astype(np.float32)
        inside = centre + (oval - centre) * (1 - 2 * margin / max(width, 1e-6))
        inside[:, 1] = np.maximum(inside[:, 1], brows.max() - margin)  # the cut at the brows stays as it was
        face = np.maximum(_polygon(inside, size, 1.0), face * skin_like)  # the oval's edge, out and in, by colour
    face = np.maximum(face, ears * _chroma_match(rgb, cheek_chroma, EAR_TOLERANCE * cheek_tolerance, 1.5))
    veto = 1.0 if skin_like is None else np.where(ears, 1.0, skin_like)  # an ear's top in shade: not hair
    if bare is None:
        return face  # bangs, a hat brim: no colour rule
    face = np.maximum(face, _polygon(upper, size, 1.0))
    return np.maximum(face, _bare_skin_coloured(rgb, person, bare, veto))


def _bare_forehead(
    forehead: np.ndarray, cheeks: tuple[np.ndarray, np.ndarray, float]
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The forehead's colour range (chroma, tolerance, brightness) of its pixels (K, 3) when it is bare: the cheeks'
    chromaticity (cheeks: their range) and about their brightness; None when it is not (bangs, a hat brim)."""
    cheek_chroma, cheek_tolerance, cheek_brightness = cheeks
    chroma, tolerance, brightness = _skin_range(forehead)
    ratio = brightness / max(cheek_brightness, 1e-6)
    if (np.abs(chroma - cheek_chroma) <= cheek_tolerance).all() and BARE_BRIGHTNESS[0] < ratio < BARE_BRIGHTNESS[1]:
        return chroma, tolerance, brightness
    return None


def _ears(landmarks: np.ndarray, width: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(N, N) bool: an ellipse beside each side of the face oval, where the ears are (xs, ys: pixel centres)."""
    left, right = landmarks[FACE_SIDES[0]], landmarks[FACE_SIDES[1]]
    outward = (left - right) / max(width, 1e-6)
    down = np.array([-outward[1], outward[0]])
    ears = np.zeros(xs.shape, bool)
    for point, sign in ((left, 1.0), (right, -1.0)):
        cx, cy = point + sign * EAR_OFFSET * width * outward + EAR_DROP * width * down
        ears |= ((xs - cx) / (EAR_AXES[0] * width)) ** 2 + ((ys - cy) / (EAR_AXES[1] * width)) ** 2 < 1
    return ears


def _bare_skin_coloured(
    rgb: np.ndarray, person: np.ndarray, bare: tuple[np.ndarray, np.ndarray, float], veto: np.ndarray | float
) -> np.ndarray:
    """(N, N) in [0, 1]: this person's pixels of the bare forehead's chromaticity and about its brightness (a bald
    scalp, the neck), times veto (the colour model's skin weight above the eyes), median-filtered and softened."""
    chroma, tolerance, brightness = bare
    pixel_brightness = rgb.sum(-1)
    low, high = SKIN_BRIGHTNESS
    lit = (pixel_brightness > low * brightness) & (pixel_brightness < high * brightness)
    coloured = _chroma_match(rgb, chroma, tolerance, SKIN_REACH) * lit * (person > 0.5) * veto
    coloured = Image.fromarray((coloured * 255).astype(np.uint8))
    coloured = coloured.filter(ImageFilter.MedianFilter(3)).filter(ImageFilter.GaussianBlur(1.0))
    return np.asarray(coloured, np.float32) / 255.0


def not_hair_mask(rgb: np.ndarray, person: np.ndarray, skin: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N, N) in [0, 1]: what a hair colour must not reach besides the skin: the lower face (LOWER_FACE), the
    eyebrows (BROW_MARGIN) and this
    person below the jaw line (JAW, faded in over JAW_FADE face widths) whose colour is not the hair's (CLOTHES_ODDS):
    clothes and neck."""
    size, width, oval = rgb.shape[0], _face_width(landmarks), landmarks[list(FACE_OVAL)]
    ys = np.arange(size, dtype=np.float32)[:, None] + 0.5
    lower = _polygon(oval, size, 1.0, grow=round(LOWER_FACE * width)) * (ys > landmarks[list(FACE_SIDES), 1].min())
    below_jaw = np.clip((ys - landmarks[list(JAW), 1].mean()) / max(JAW_FADE * width, 1.0), 0.0, 1.0)
    beard = _polygon(oval, size, JAW_FADE * width, grow=round(BEARD * width)) * below_jaw
    for outline in BROW_OUTLINES:
        lower = np.maximum(lower, _polygon(landmarks[list(outline)], size, 1.0, grow=round(BROW_MARGIN * width)))
    return np.maximum(np.maximum(lower, beard), _clothes(rgb, person, skin, landmarks)).astype(np.float32)


def _face_width(landmarks: np.ndarray) -> float:
    return float(np.hypot(*(landmarks[FACE_SIDES[0]] - landmarks[FACE_SIDES[1]])))


def square_max(values: np.ndarray, size: int) -> np.ndarray:
    """(H, W) the maximum over each size x size square (size odd; the border repeated): separable, and along each axis
    by doubling windows, O(log size) per pixel (PIL's MaxFilter is O(size^2): 170 ms at 21 px on the mask frame)."""
    out = values
    for axis in (0, 1):
        n, r = out.shape[axis], size // 2
        run = np.moveaxis(np.pad(out, [(r, r) if a == axis else (0, 0) for a in (0, 1)], mode="edge"), axis, 0)
        length = 1
        while 2 * length <= size:  # run[i] = max of the `length` values from i
            run = np.maximum(run[:-length], run[length:])
            length *= 2
        out = np.moveaxis(np.maximum(run[:n], run[size - length : size - length + n]), 0, axis)
    return out


def fill_hair_holes(hair: np.ndarray, skin: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The skin mask less the holes in the hair above the eyes narrower than HOLE_FILL face widths (a grey closing),
    on a head with hair (FILL_MIN_HAIR)."""
    width = _face_width(landmarks)
    ys = np.arange(hair.shape[0], dtype=np.float32)[:, None] + 0.5
    above = ys < landmarks[list(FACE_SIDES), 1].min()
    if ((hair > 0.5) & above).sum() < FILL_MIN_HAIR * width**2:  # a bald head's rim of hair: nothing to fill
        return skin
    size = max(3, 2 * round(HOLE_FILL * width / 2) + 1)
    closed = -square_max(-square_max(hair.astype(np.float32), size), size)
    fill = np.clip(closed - hair, 0.0, 1.0) * above
    return (skin * (1.0 - fill)).astype(np.float32)


def _clothes(rgb: np.ndarray, person: np.ndarray, skin: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N, N) in [0, 1]: this person below the jaw line whose colour is not the hair's (see CLOTHES_ODDS)."""
    size = rgb.shape[0]
    width = _face_width(landmarks)
    ys = np.arange(size, dtype=np.float32)[:, None] + 0.5
    jaw = float(landmarks[list(JAW), 1].mean())
    below = np.broadcast_to(np.clip((ys - jaw) / max(JAW_FADE * width, 1.0), 0.0, 1.0), (size, size))
    off_skin = (person > 0.5) & (skin < 0.5)
    hair = rgb[off_skin & (ys < landmarks[list(BROWS), 1].min())]
    clothes = rgb[off_skin & (ys > landmarks[CHIN, 1] + CLOTHES_DROP * width)]
    if len(clothes) < MIN_HAIR_SAMPLES:
        return np.zeros((size, size), np.float32)
    if len(hair) < MIN_HAIR_SAMPLES:
        return below.astype(np.float32).copy()
    keep = np.clip(colour_log_odds(rgb, hair, clothes) - math.log2(CLOTHES_ODDS) + 1.0, 0.0, 1.0)
    keep = Image.fromarray((keep * 255).astype(np.uint8)).filter(ImageFilter.MedianFilter(3))
    keep = np.asarray(keep.filter(ImageFilter.GaussianBlur(1.0)), np.float32) / 255.0
    return (below * (1.0 - keep)).astype(np.float32)


class FaceSegmenter:
    """Computes a face's FaceMasks from the photo and its aligned crop's matrix (photo px -> crop px)."""

    def __init__(self, model: MaskModel):
        self.model = model

    def masks(self, photo: Image.Image, crop_matrix: np.ndarray, crop_size: int) -> FaceMasks | None:
        """The masks of the face aligned by crop_matrix, or None when its frame misses the photo."""
        crop_to_mask = mask_frame(crop_size)
        cx, cy, side = LANDMARK_VIEW
        k = LANDMARK_INPUT / (side * crop_size)
        crop_to_view = np.array([[k, 0.0, (side / 2 - cx) * crop_size * k], [0.0, k, (side / 2 - cy) * crop_size * k]])
        try:
            frame = warp_square(photo, compose_affine(crop_to_mask, crop_matrix), MASK_SIZE)
            view = warp_square(photo, compose_affine(crop_to_view, crop_matrix), LANDMARK_INPUT)
        except (NoFaceError, ValueError):
            return None
        rgb = np.asarray(frame, np.float32) / 255.0
        seed = crop_to_mask @ [FACE_CENTRE[0] * crop_size, FACE_CENTRE[1] * crop_size, 1.0]
        person = connected_part(self.model.person(rgb), tuple(seed))
        points, score = self.model.face_landmarks(np.asarray(view, np.float32) / 255.0)
        if score < MIN_FACE_SCORE or not np.isfinite(points).all():
            return FaceMasks(person.astype(np.float32), np.zeros_like(person, np.float32), crop_to_mask, crop_size)
        view_to_mask = crop_to_mask[:, :2] / k  # view px -> crop px -> mask px (both scale and shift)
        to_mask = np.hstack(
            [view_to_mask, (crop_to_mask @ [*(np.array([cx, cy]) - side / 2) * crop_size, 1.0])[:, None]]
        )
        landmarks = points @ to_mask[:, :2].T + to_mask[:, 2]
        skin = skin_mask(rgb, person, landmarks).astype(np.float32)
        not_hair = not_hair_mask(rgb, person, skin, landmarks)
        skin = fill_hair_holes(person * (1.0 - skin) * (1.0 - not_hair), skin, landmarks)
        return FaceMasks(person.astype(np.float32), skin, crop_to_mask, crop_size, landmarks, not_hair=not_hair)
