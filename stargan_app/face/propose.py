"""A fast face proposer: MediaPipe's BlazeFace detectors on a small copy of the photo, decoded here.

BlazeFace is an SSD: for each of a fixed grid of anchors the model outputs a score and a box with six keypoints,
relative to the anchor. The anchors, the decoding and the non-maximum suppression below follow MediaPipe's face
detection graphs (mediapipe/modules/face_detection/face_detection{,_short_range,_full_range}.pbtxt: the
SsdAnchorsCalculator, TensorsToDetectionsCalculator and NonMaxSuppressionCalculator options there):

- short range, 128x128 input: 4 layers with strides 8, 16, 16, 16, interpolated scale aspect ratio 1.0, so 2
  anchors per cell of the 16x16 grid and 6 per cell of the 8x8 grid (896); score threshold 0.5;
- full range, 192x192 input: 1 layer with stride 4, no interpolated anchor, so 1 anchor per cell of the 48x48
  grid (2304); score threshold 0.6;
- both: fixed anchor size (the box is not scaled by the anchor's), anchor offset 0.5, coordinates divided by the
  input side (x/y/w/h scale), output order x_centre, y_centre, w, h, then keypoints (x, y); sigmoid scores with
  the logit clipped to +-100; the input letterboxed into the square (aspect kept, zero border), RGB in [-1, 1];
  weighted NMS at IoU 0.3.

The proposer only says where faces are; MTCNN (face/detect.py) gives the five landmarks the alignment uses. Both
models are the vendored .tflite files in face/models (Apache-2.0, see NOTICE there), run by LiteRT (ai-edge-litert).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().with_name("models")
PROPOSER_FILES = {  # vendored file -> sha256 (models/extract.py reproduces them from the mediapipe 0.10.21 wheel)
    "face_detection_short_range.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    "face_detection_full_range_sparse.tflite": "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
}


@dataclass(frozen=True)
class BlazeFaceSpec:
    """One BlazeFace model's input and the SSD options its graph decodes it with."""

    file: str
    input_size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    min_score: float
    num_anchors: int


SHORT_RANGE = BlazeFaceSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 1.0, 0.5, 896)
FULL_RANGE = BlazeFaceSpec("face_detection_full_range_sparse.tflite", 192, (4,), 0.0, 0.6, 2304)
NMS_IOU = 0.3
NUM_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion (the subject's)


def ssd_anchors(spec: BlazeFaceSpec) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in [0, 1] of the input, in the model's output order: MediaPipe's
    SsdAnchorsCalculator with fixed anchor size (so only the centres matter) and one aspect ratio (1.0). Consecutive
    layers with the same stride share one grid; each layer adds one anchor per cell, and one more when the
    interpolated scale aspect ratio is > 0."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        per_cell = 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:
            per_cell += 1 + (spec.interpolated_scale_aspect_ratio > 0)
            layer += 1
        side = math.ceil(spec.input_size / stride)
        ys, xs = np.mgrid[0:side, 0:side]
        grid = np.stack([(xs + 0.5) / side, (ys + 0.5) / side], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, 1).reshape(-1, 2))
    anchors = np.concatenate(centres)
    assert len(anchors) == spec.num_anchors, (spec.file, len(anchors))
    return anchors


@dataclass(frozen=True, eq=False)
class Proposal:
    """A face BlazeFace sees: box (x0, y0, x1, y1), six keypoints (6, 2) and a score, in the photo's pixels."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float

    @property
    def side(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def decode(
    regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, input_size: int, min_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs (N, 16), (N,) -> boxes (K, 4) x0 y0 x1 y1 and keypoints (K, 6, 2), both in [0, 1] of the input,
    and scores (K,), for the anchors scoring at least min_score."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1), -100.0, 100.0)))
    keep = scores >= min_score
    raw, anchor, scores = regressors.reshape(-1, 16)[keep] / input_size, anchors[keep], scores[keep]
    centre, size = raw[:, :2] + anchor, raw[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], 1)
    keypoints = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchor[:, None]
    return boxes, keypoints, scores


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area - inter, 1e-12)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-maximum suppression: the best remaining box and every box overlapping it by more
    than `iou` become one detection, their coordinates averaged with the scores as weights, the best score kept."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    left = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (_iou_one(boxes[i], boxes) > iou)
        group[i] = True
        w = scores[group][:, None]
        out.append(
            (
                (boxes[group] * w).sum(0) / w.sum(),
                (keypoints[group] * w[:, :, None]).sum(0) / w.sum(),
                float(scores[i]),
            )
        )
        left &= ~group
    return out


class ProposerModel(Protocol):
    """What the proposer needs from a runtime: one BlazeFace forward (LiteRTProposerModel; tests use stand-ins)."""

    def run(self, spec: BlazeFaceSpec, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(S, S, 3) float32 RGB in [-1, 1] -> regressors (N, 16) and score logits (N,)."""
        ...


class LiteRTProposerModel:
    """The vendored BlazeFace models on LiteRT's interpreter (XNNPACK, `threads` CPU threads)."""

    def __init__(self, specs: tuple[BlazeFaceSpec, ...], models_dir: Path = MODELS_DIR, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter  # ImportError: see load_proposer

        self._models = {}
        for spec in specs:
            path = Path(models_dir) / spec.file
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing")
            model = Interpreter(model_path=str(path), num_threads=threads)
            model.allocate_tensors()
            self._models[spec.file] = model
        self._lock = threading.Lock()  # an interpreter holds its tensors: one call at a time
        for spec in specs:  # the first run sets up XNNPACK: pay it now, not on an edit
            self.run(spec, np.zeros((spec.input_size, spec.input_size, 3), np.float32))

    def run(self, spec: BlazeFaceSpec, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        model = self._models[spec.file]
        with self._lock:
            model.set_tensor(model.get_input_details()[0]["index"], np.ascontiguousarray(rgb, np.float32)[None])
            model.invoke()
            outs = [model.get_tensor(d["index"]) for d in model.get_output_details()]
        regressors = next(o for o in outs if o.shape[-1] == 16).reshape(-1, 16)
        logits = next(o for o in outs if o.shape[-1] == 1).reshape(-1)
        return regressors.astype(np.float64), logits.astype(np.float64)


class FaceProposer:
    """Where faces are in a photo, from BlazeFace on letterboxed copies of it (a few ms on a 12 MP photo).

    Each model sees the whole photo, and the full-range model also each square tile along its long side (a 4:3
    photo: two overlapping tiles), so that faces in a wide group photo are not halved by the letterbox.
    """

    def __init__(self, model: ProposerModel, specs: tuple[BlazeFaceSpec, ...] = (SHORT_RANGE, FULL_RANGE)):
        self.model = model
        self.specs = specs
        self._anchors = {spec.file: ssd_anchors(spec) for spec in specs}
        self.tile_spec = FULL_RANGE if FULL_RANGE in specs else specs[-1]
        self.max_tiles = 3  # square tiles along the long side when it is at least 1.5x the short one

    def propose(self, img: Image.Image) -> list[Proposal]:
        """Face proposals in `img`'s pixels, largest first."""
        width, height = img.size
        if min(width, height) < 1:
            return []
        side = max(spec.input_size for spec in self.specs)
        # one small copy serves every view: the photo reduced to about twice the largest model input per view side
        views = [(0.0, 0.0, float(max(width, height)))]  # (left, top, side) squares of the photo
        short, long = min(width, height), max(width, height)
        if long >= 1.5 * short:
            n = min(self.max_tiles, math.ceil(long / short))
            for k in range(n):
                start = (long - short) * k / max(n - 1, 1)
                views.append((start, 0.0, short) if width >= height else (0.0, start, short))
        scale = min(1.0, 2 * side * max(1.0, long / short) / long)
        small = img if scale >= 1.0 else _shrink(img, scale)
        k = small.width / width
        boxes, keypoints, scores = [], [], []
        for v, (left, top, span) in enumerate(views):
            specs = self.specs if v == 0 else (self.tile_spec,)
            for spec in specs:
                tensor = _letterbox(small, (left * k, top * k, span * k), spec.input_size)
                regressors, logits = self.model.run(spec, tensor)
                b, p, s = decode(regressors, logits, self._anchors[spec.file], spec.input_size, spec.min_score)
                boxes.append(b * span + [left, top, left, top])
                keypoints.append(p * span + [left, top])
                scores.append(s)
        merged = weighted_nms(np.concatenate(boxes), np.concatenate(keypoints), np.concatenate(scores))
        proposals = [
            Proposal(tuple(float(v) for v in box), kp, score)
            for box, kp, score in merged
            if np.isfinite(box).all() and box[2] > box[0] and box[3] > box[1]
        ]
        proposals.sort(key=lambda p: p.side, reverse=True)
        return proposals


def _shrink(img: Image.Image, scale: float) -> Image.Image:
    """`img` reduced by `scale` (< 1). A large reduction first takes every few pixels (a 12 MP photo in about a
    millisecond, where any filter reads all of it) to twice the size, then averages 2x2: at BlazeFace's input scale
    that aliasing is invisible."""
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    if scale < 0.25:
        return img.resize((2 * size[0], 2 * size[1]), Image.Resampling.NEAREST).reduce(2)
    return img.resize(size, Image.Resampling.BILINEAR)


def _letterbox(img: Image.Image, square: tuple[float, float, float, float], size: int) -> np.ndarray:
    """(size, size, 3) float32 in [-1, 1]: the square (left, top, side) of `img` drawn `size` px wide; the part of
    the square outside the photo is a zero border (black, as MediaPipe's BORDER_ZERO)."""
    left, top, side = square
    k = size / side
    x0, y0 = max(0.0, left), max(0.0, top)
    x1, y1 = min(float(img.width), left + side), min(float(img.height), top + side)
    out = np.full((size, size, 3), -1.0, np.float32)
    w, h = round((x1 - x0) * k), round((y1 - y0) * k)
    if w < 1 or h < 1:
        return out
    part = img.resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x1, y1))
    ox, oy = round((x0 - left) * k), round((y0 - top) * k)
    w, h = min(w, size - ox), min(h, size - oy)
    out[oy : oy + h, ox : ox + w] = np.asarray(part, np.float32)[:h, :w] / 127.5 - 1.0
    return out


def load_proposer(models_dir: Path = MODELS_DIR) -> FaceProposer | None:
    """BlazeFace on LiteRT, or None (one log line) when the runtime or a model file is missing: then detection is
    MTCNN's own search, as before the proposer."""
    try:
        return FaceProposer(LiteRTProposerModel((SHORT_RANGE, FULL_RANGE), models_dir))
    except ImportError:
        log.warning("ai-edge-litert is not installed: faces are found by MTCNN's full search (no BlazeFace proposer)")
    except (OSError, ValueError, RuntimeError) as e:
        log.warning("the BlazeFace proposer could not be loaded (%s): faces are found by MTCNN's full search", e)
    return None
