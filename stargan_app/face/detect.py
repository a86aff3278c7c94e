"""MTCNN face detection on a downscaled copy, mapped back to full-resolution coordinates."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

# MTCNN's P-net looks at 12x12 windows: anything smaller cannot hold a face (and crashes its pyramid code).
_MTCNN_MIN_SIDE = 12


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One face: box (x0, y0, x1, y1) and 5 landmarks (eyes, nose, mouth corners) in full-resolution pixels."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    def __post_init__(self) -> None:
        landmarks = np.array(self.landmarks, dtype=np.float64).reshape(5, 2)
        landmarks.setflags(write=False)
        object.__setattr__(self, "landmarks", landmarks)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: coordinates rounded to 0.1 px, score to 3 decimals."""
        return {
            "box": [round(v, 1) for v in self.box],
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "score": round(self.score, 3),
        }


class FaceDetector:
    """Finds faces with facenet-pytorch's MTCNN (bundled weights, built lazily on first use)."""

    def __init__(
        self,
        min_face_px: int = 40,
        min_score: float = 0.95,
        max_side: int = 800,
        device: str = "cpu",
    ) -> None:
        self.min_face_px = min_face_px
        self.min_score = min_score
        self.max_side = max_side
        self.device = device
        self.retry_below_px = 256  # photos with a shorter side get the padded, upscaled second pass too
        self.retry_pad = 0.3  # border added on each side for the retry, as a fraction of the photo's side
        self.retry_pad_mode = "edge"  # numpy pad mode of that border
        self.retry_short_side = 320  # the padded copy is upscaled to at least this short side
        # Faces in tight crops (avatars, CelebA's own 89 px images) are often 30-40 px wide: the retry keeps them
        # down to this fraction of min_face_px, and alignment upscales them to the model's input.
        self.retry_min_face_fraction = 0.6
        # The first pass looks only for faces at least this fraction of the photo's long side (MTCNN's cost grows
        # with the square of the smallest face it must find, relative to the photo); the full search down to
        # min_face_px runs when that pass finds nothing. 0 searches fully at once.
        self.first_pass_face_fraction = 0.03
        self._mtcnn: Any = None
        # min_face_size is an attribute MTCNN reads on each call, so set-and-detect must not interleave.
        self._lock = threading.Lock()

    def _model(self) -> Any:
        if self._mtcnn is None:
            from facenet_pytorch import MTCNN

            self._mtcnn = MTCNN(keep_all=True, device=self.device, min_face_size=20)
        return self._mtcnn

    def detect(self, img: Image.Image) -> list[DetectedFace]:
        """All faces at least ``min_face_px`` wide with score >= ``min_score``, largest first. In a large photo, the
        faces under ``first_pass_face_fraction`` of its long side are only searched for when it has no larger one.

        MTCNN misses faces that fill the frame (its proposals never exceed the image) and faces near its smallest
        window, so a small photo, or one where the first pass finds nothing, is searched again on a copy with a
        border (as in the photos MTCNN was trained on), upscaled; boxes and landmarks map back to the original.
        """
        width, height = img.size
        if min(width, height) < _MTCNN_MIN_SIDE:
            return []
        rgb = img if img.mode == "RGB" else img.convert("RGB")
        first_pass_px = self.first_pass_face_fraction * max(width, height)
        faces = []
        if first_pass_px > self.min_face_px:  # only large photos: in small ones min_face_px is the floor anyway
            faces = self._detect_scaled(rgb, offset=(0.0, 0.0), source_scale=1.0, min_face_px=first_pass_px)
        if not faces:
            faces = self._detect_scaled(rgb, offset=(0.0, 0.0), source_scale=1.0)
        if not faces or min(width, height) < self.retry_below_px:
            # where both passes see a face, the padded one wins: with a border around it, MTCNN's landmarks on a
            # face that fills the frame are several pixels more accurate
            faces = _merge(self._detect_padded(rgb), faces)
        return faces

    def _detect_padded(self, rgb: Image.Image) -> list[DetectedFace]:
        pad_x, pad_y = round(rgb.width * self.retry_pad), round(rgb.height * self.retry_pad)
        arr = np.pad(np.asarray(rgb), ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode=self.retry_pad_mode)
        padded = Image.fromarray(arr)
        scale = max(1.0, self.retry_short_side / min(padded.size))
        if scale > 1.0:
            padded = padded.resize(
                (round(padded.width * scale), round(padded.height * scale)), Image.Resampling.BICUBIC
            )
        min_face_px = self.retry_min_face_fraction * self.min_face_px
        return self._detect_scaled(padded, offset=(pad_x, pad_y), source_scale=scale, min_face_px=min_face_px)

    def _detect_scaled(
        self, rgb: Image.Image, offset: tuple[float, float], source_scale: float, min_face_px: float | None = None
    ) -> list[DetectedFace]:
        """Detect on ``rgb``, an image that is the original ``source_scale`` times larger and shifted by ``offset``
        original pixels; results come back in original pixels."""
        width, height = rgb.size
        small = rgb
        if max(width, height) > self.max_side:
            ratio = self.max_side / max(width, height)
            size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
            small = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        sx, sy = width / small.width / source_scale, height / small.height / source_scale
        # Ask MTCNN for faces a little under the pixel limit (its boxes are approximate), never below its 12 px.
        min_face_px = self.min_face_px if min_face_px is None else min_face_px
        min_size = max(float(_MTCNN_MIN_SIDE), 0.8 * min_face_px / sx)
        if min(small.size) < min_size:
            return []
        with self._lock, torch.inference_mode():
            mtcnn = self._model()
            mtcnn.min_face_size = min_size
            try:
                boxes, probs, points = mtcnn.detect(small, landmarks=True)
            # MTCNN's own failure modes on odd inputs: an empty pyramid or no candidate crops to stack.
            except (RuntimeError, ValueError, IndexError):
                return []
        return self._collect(boxes, probs, points, sx, sy, offset, min_face_px)

    def _collect(
        self,
        boxes: Any,
        probs: Any,
        points: Any,
        sx: float,
        sy: float,
        offset: tuple[float, float] = (0.0, 0.0),
        min_face_px: float | None = None,
    ) -> list[DetectedFace]:
        min_face_px = self.min_face_px if min_face_px is None else min_face_px
        boxes_f, probs_f, points_f = (
            _as_float(boxes, (-1, 4)),
            _as_float(probs, (-1,)),
            _as_float(points, (-1, 5, 2)),
        )
        if boxes_f is None or probs_f is None or points_f is None:
            return []
        if not (len(boxes_f) == len(probs_f) == len(points_f)):
            return []
        scale = np.array([sx, sy, sx, sy])
        shift = np.array([offset[0], offset[1], offset[0], offset[1]])
        faces = []
        for box, prob, pts in zip(boxes_f, probs_f, points_f, strict=True):
            box_full = box * scale - shift
            pts_full = pts * np.array([sx, sy]) - np.array(offset)
            if not (np.isfinite(box_full).all() and np.isfinite(pts_full).all() and math.isfinite(prob)):
                continue
            if prob < self.min_score or box_full[2] - box_full[0] < min_face_px:
                continue
            faces.append(DetectedFace(box=tuple(box_full), landmarks=pts_full, score=float(prob)))
        faces.sort(key=lambda f: f.width * (f.box[3] - f.box[1]), reverse=True)
        return faces


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _merge(preferred: list[DetectedFace], others: list[DetectedFace]) -> list[DetectedFace]:
    """The preferred faces plus the others that overlap none of them, largest first."""
    faces = preferred + [f for f in others if all(_iou(f.box, g.box) < 0.3 for g in preferred)]
    faces.sort(key=lambda f: f.width * (f.box[3] - f.box[1]), reverse=True)
    return faces


def _as_float(value: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """MTCNN returns None, float arrays or (with numpy 2) object arrays holding None; normalise to float64."""
    if value is None:
        return np.empty((0, *shape[1:]))
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError):
        return np.empty((0, *shape[1:])) if _all_none(value) else None
    return arr


def _all_none(value: Any) -> bool:
    return all(v is None for v in np.asarray(value, dtype=object).ravel())
