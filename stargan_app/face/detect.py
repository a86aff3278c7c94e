"""Face detection: BlazeFace proposes where faces are (face/propose.py, a few ms), MTCNN refines each proposal on a
small crop around it into the box and five landmarks the alignment uses; a photo where that finds nothing gets
MTCNN's own search on a downscaled copy. Everything is mapped back to full-resolution coordinates."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from stargan_app.face.propose import FaceProposer, Proposal, load_proposer

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
    """Finds faces with facenet-pytorch's MTCNN (bundled weights, built lazily on first use), on the crops around
    BlazeFace's proposals when there is a proposer.

    proposer: True the vendored BlazeFace models (built on first use; without ai-edge-litert, one log line and
    MTCNN's search alone), False none (MTCNN's search, as before the proposer), or a FaceProposer.
    """

    def __init__(
        self,
        min_face_px: int = 40,
        min_score: float = 0.95,
        max_side: int = 800,
        device: str = "cpu",
        proposer: FaceProposer | bool = True,
    ) -> None:
        self.min_face_px = min_face_px
        self.min_score = min_score
        self.max_side = max_side
        self.device = device
        self._proposer: FaceProposer | bool | None = proposer
        # MTCNN refines a proposal on a square crop around it, this many times the proposal's side (BlazeFace's box
        # is tight on the face; MTCNN saw faces with some context in training), drawn at least this many px wide,
        # and looks there only for faces at least this fraction of the crop's side.
        self.refine_span = 2.0
        self.refine_size = 192
        self.refine_min_fraction = 0.2
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

    @property
    def proposer(self) -> FaceProposer | None:
        """The BlazeFace proposer (loaded on first use), or None: MTCNN's search alone."""
        if self._proposer is True:
            with self._lock:
                if self._proposer is True:
                    self._proposer = load_proposer()
        return self._proposer or None

    def detect(self, img: Image.Image) -> list[DetectedFace]:
        """All faces at least ``min_face_px`` wide with score >= ``min_score``, largest first. In a large photo, the
        faces under ``first_pass_face_fraction`` of its long side are only kept when it has no larger one.

        With a proposer, MTCNN refines each of BlazeFace's proposals on a crop around it (``refine``); when that
        finds no face, or there is no proposer, MTCNN searches the photo (``search``).
        """
        width, height = img.size
        if min(width, height) < _MTCNN_MIN_SIDE:
            return []
        rgb = img if img.mode == "RGB" else img.convert("RGB")
        proposer = self.proposer
        if proposer is not None:
            faces = self.refine(rgb, proposer.propose(rgb))
            if faces:
                return faces
        return self.search(rgb)

    def refine(self, rgb: Image.Image, proposals: list[Proposal]) -> list[DetectedFace]:
        """MTCNN's face (box, landmarks) on a crop around each proposal, edge-padded where it leaves the photo (as
        the padded search's border); proposals MTCNN does not confirm are dropped. Largest first, overlaps merged;
        in a large photo the faces under ``first_pass_face_fraction`` of its long side go when a larger one is found.
        """
        floor = self._floor_px(rgb.size)
        faces: list[DetectedFace] = []
        for proposal in proposals:
            face = self._refine_one(rgb, proposal, floor)
            if face is not None:
                faces = _merge(faces, [face])
        first_pass_px = self.first_pass_face_fraction * max(rgb.size)
        if first_pass_px > self.min_face_px and any(f.width >= first_pass_px for f in faces):
            faces = [f for f in faces if f.width >= first_pass_px]
        return faces

    def _floor_px(self, size: tuple[int, int]) -> float:
        """The smallest face kept in a photo of `size`: min_face_px, or the retry's lower floor in a small photo."""
        small = min(size) < self.retry_below_px
        return self.retry_min_face_fraction * self.min_face_px if small else float(self.min_face_px)

    def _refine_one(self, rgb: Image.Image, proposal: Proposal, floor: float) -> DetectedFace | None:
        side = self.refine_span * proposal.side
        cx, cy = (proposal.box[0] + proposal.box[2]) / 2, (proposal.box[1] + proposal.box[3]) / 2
        left, top = cx - side / 2, cy - side / 2
        # at least the resolution the search would see the face at (a copy at most max_side long), so both give the
        # same box and landmarks; on a large photo that is about refine_size anyway
        px = min(max(self.refine_size, round(side * min(1.0, self.max_side / max(rgb.size)))), self.max_side)
        scale = px / side
        crop = _padded_square(rgb, left, top, side, px)
        search_px = max(floor, self.refine_min_fraction * side)
        faces = self._detect_scaled(crop, (-left, -top), scale, min_face_px=floor, search_px=search_px)
        x0, y0, x1, y1 = proposal.box
        inside = [f for f in faces if x0 < (f.box[0] + f.box[2]) / 2 < x1 and y0 < (f.box[1] + f.box[3]) / 2 < y1]
        if not inside:
            return None
        return min(inside, key=lambda f: math.hypot((f.box[0] + f.box[2]) / 2 - cx, (f.box[1] + f.box[3]) / 2 - cy))

    def search(self, rgb: Image.Image) -> list[DetectedFace]:
        """MTCNN's own search of the photo (no proposer): a first pass for faces at least first_pass_face_fraction
        of a large photo's long side, then the full search down to min_face_px when that finds nothing.

        MTCNN misses faces that fill the frame (its proposals never exceed the image) and faces near its smallest
        window, so a small photo, or one where the first pass finds nothing, is searched again on a copy with a
        border (as in the photos MTCNN was trained on), upscaled; boxes and landmarks map back to the original.
        """
        width, height = rgb.size
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
        self,
        rgb: Image.Image,
        offset: tuple[float, float],
        source_scale: float,
        min_face_px: float | None = None,
        search_px: float | None = None,
    ) -> list[DetectedFace]:
        """Detect on ``rgb``, an image that is the original ``source_scale`` times larger and shifted by ``offset``
        original pixels; results come back in original pixels. Faces under min_face_px (original px) are dropped;
        MTCNN's pyramid looks for faces down to search_px (default min_face_px)."""
        width, height = rgb.size
        small = rgb
        if max(width, height) > self.max_side:
            ratio = self.max_side / max(width, height)
            size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
            small = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        sx, sy = width / small.width / source_scale, height / small.height / source_scale
        # Ask MTCNN for faces a little under the pixel limit (its boxes are approximate), never below its 12 px.
        min_face_px = self.min_face_px if min_face_px is None else min_face_px
        search_px = min_face_px if search_px is None else search_px
        min_size = max(float(_MTCNN_MIN_SIDE), 0.8 * search_px / sx)
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


def _padded_square(rgb: Image.Image, left: float, top: float, side: float, size: int) -> Image.Image:
    """The square (left, top, side) of `rgb` drawn `size` px wide; where it leaves the photo, the photo's edge
    pixels repeated."""
    k = size / side
    x0, y0 = max(0.0, left), max(0.0, top)
    x1, y1 = min(float(rgb.width), left + side), min(float(rgb.height), top + side)
    w, h = max(1, min(size, round((x1 - x0) * k))), max(1, min(size, round((y1 - y0) * k)))
    if x1 <= x0 or y1 <= y0:
        return Image.new("RGB", (size, size))
    part = np.asarray(rgb.resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x1, y1), reducing_gap=2.0))
    ox, oy = min(size - w, max(0, round((x0 - left) * k))), min(size - h, max(0, round((y0 - top) * k)))
    return Image.fromarray(np.pad(part, ((oy, size - h - oy), (ox, size - w - ox), (0, 0)), mode="edge"))


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
