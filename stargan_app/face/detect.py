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
            "landmarks": [
                [round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks
            ],
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
        self._mtcnn: Any = None
        # min_face_size is an attribute MTCNN reads on each call, so set-and-detect must not interleave.
        self._lock = threading.Lock()

    def _model(self) -> Any:
        if self._mtcnn is None:
            from facenet_pytorch import MTCNN

            self._mtcnn = MTCNN(keep_all=True, device=self.device, min_face_size=20)
        return self._mtcnn

    def detect(self, img: Image.Image) -> list[DetectedFace]:
        """All faces at least ``min_face_px`` wide with score >= ``min_score``, largest first."""
        width, height = img.size
        if min(width, height) < _MTCNN_MIN_SIDE:
            return []
        small = img if img.mode == "RGB" else img.convert("RGB")
        if max(width, height) > self.max_side:
            ratio = self.max_side / max(width, height)
            size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
            small = small.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        sx, sy = width / small.width, height / small.height
        # Ask MTCNN for faces a little under the pixel limit (its boxes are approximate), never below its 12 px.
        min_size = max(float(_MTCNN_MIN_SIDE), 0.8 * self.min_face_px / sx)
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
        return self._collect(boxes, probs, points, sx, sy)

    def _collect(
        self, boxes: Any, probs: Any, points: Any, sx: float, sy: float
    ) -> list[DetectedFace]:
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
        faces = []
        for box, prob, pts in zip(boxes_f, probs_f, points_f, strict=True):
            box_full = box * scale
            pts_full = pts * np.array([sx, sy])
            if not (
                np.isfinite(box_full).all()
                and np.isfinite(pts_full).all()
                and math.isfinite(prob)
            ):
                continue
            if prob < self.min_score or box_full[2] - box_full[0] < self.min_face_px:
                continue
            faces.append(
                DetectedFace(box=tuple(box_full), landmarks=pts_full, score=float(prob))
            )
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
