"""Tests for stargan_app.face.detect with the real (bundled, offline) MTCNN weights."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan_app.face.detect import DetectedFace, FaceDetector
from stargan_app.face.propose import (
    FULL_RANGE,
    PROPOSER_FILES,
    SHORT_RANGE,
    Proposal,
    decode,
    load_proposer,
    ssd_anchors,
    weighted_nms,
)
from stargan_app.face.propose import MODELS_DIR as PROPOSER_DIR
from stargan_app.imaging import load_image

SHARED_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # MTCNN runs hundreds of tiny ops; on a small, busy CI machine thread hand-offs dominate (10x slower).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the public-domain test portrait")
    return Image.fromarray(data.astronaut()).convert("RGB")


def assert_plausible(face: DetectedFace, img_size: tuple[int, int]) -> None:
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= img_size[0] and 0 <= y0 < y1 <= img_size[1]
    assert face.score >= 0.95
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float64
    le, re, nose, ml, mr = face.landmarks
    assert le[0] < re[0] and ml[0] < mr[0]
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])
    assert np.all((face.landmarks[:, 0] > x0) & (face.landmarks[:, 0] < x1))
    assert np.all((face.landmarks[:, 1] > y0) & (face.landmarks[:, 1] < y1))


def the_one_face(detector: FaceDetector, img: Image.Image) -> DetectedFace:
    """The face `detector` finds in `img`, asserting that there is exactly one and that it is plausible."""
    faces = detector.detect(img)
    assert len(faces) == 1
    assert_plausible(faces[0], img.size)
    return faces[0]


def test_construction_is_cheap_and_lazy():
    det = FaceDetector(min_face_px=20, min_score=0.9, max_side=640)
    assert det._mtcnn is None
    assert det.detect(Image.new("RGB", (5, 5))) == []


def test_astronaut_has_one_face(detector, astronaut):
    assert (
        60 < the_one_face(detector, astronaut).width < 150
    )  # the astronaut's face is ~90 px wide in the 512 px portrait


def test_a_detected_face_as_json(detector, astronaut):
    face = detector.detect(astronaut)[0]
    d = face.to_dict()
    json.dumps(d)
    assert d["box"] == [round(v, 1) for v in face.box]
    assert len(d["landmarks"]) == 5 and all(len(p) == 2 for p in d["landmarks"])


def test_grey_input_is_accepted(detector, astronaut):
    assert len(detector.detect(astronaut.convert("L"))) == 1


def test_large_image_is_downscaled_and_mapped_back(detector, astronaut):
    small = detector.detect(astronaut)[0]
    big = the_one_face(detector, astronaut.resize((4000, 4000), Image.Resampling.BILINEAR))
    k = 4000 / 512
    tol = 0.1 * small.width * k
    assert np.allclose(big.box, np.array(small.box) * k, atol=tol)
    assert np.allclose(big.landmarks, small.landmarks * k, atol=tol)


def test_two_faces_largest_first(detector, astronaut):
    canvas = Image.new("RGB", (512 + 320, 512), (128, 128, 128))
    canvas.paste(astronaut.resize((300, 300), Image.Resampling.LANCZOS), (522, 100))
    canvas.paste(astronaut, (0, 0))
    faces = detector.detect(canvas)
    assert len(faces) == 2
    assert faces[0].width > faces[1].width * 1.3
    assert faces[0].box[0] < 512 <= faces[1].box[0]


def test_large_photo_skips_tiny_faces_beside_a_large_one(detector, astronaut):
    """In a 4000 px photo the first pass looks only for faces >= 3% of its width (120 px); the 90 px face is found
    by the full search when it is the only one, and left out beside a larger face."""
    photo = Image.new("RGB", (4000, 2400), (110, 120, 130))
    photo.paste(astronaut, (3200, 1600))  # its face is ~90 px wide
    alone = detector.detect(photo)
    assert len(alone) == 1 and 60 < alone[0].width < 120 and alone[0].box[0] > 3200
    photo.paste(astronaut.resize((2000, 2000), Image.Resampling.BILINEAR), (200, 200))
    faces = detector.detect(photo)
    assert len(faces) == 1 and faces[0].width > 250 and faces[0].box[2] < 2200
    full_search = FaceDetector(proposer=False)  # MTCNN's own search, without its first pass
    full_search.first_pass_face_fraction = 0.0
    assert [round(f.width / 50) for f in full_search.detect(photo)] == [round(faces[0].width / 50), 2]


def test_min_face_px_drops_small_faces(astronaut):
    det = FaceDetector(min_face_px=200)
    assert det.detect(astronaut) == []


@pytest.mark.parametrize(
    "img",
    [
        Image.new("RGB", (640, 480), (255, 255, 255)),
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)),
        Image.new("RGB", (1, 1)),
        Image.new("RGB", (11, 11)),
        Image.new("RGB", (3000, 60), (200, 150, 120)),
        Image.new("RGB", (60, 3000), (200, 150, 120)),
        Image.new("RGB", (600, 12), (90, 90, 90)),
    ],
    ids=["blank", "noise", "1x1", "11x11", "strip-50to1", "strip-1to50", "strip-12px"],
)
def test_no_face(detector, img):
    assert detector.detect(img) == []


def test_detected_face_normalises_fields():
    face = DetectedFace(box=[1, 2, 30, 40], landmarks=[[1, 2]] * 5, score=np.float32(0.99))
    assert face.box == (1.0, 2.0, 30.0, 40.0) and isinstance(face.score, float)
    assert face.width == 29.0
    assert face.landmarks.dtype == np.float64 and not face.landmarks.flags.writeable
    with pytest.raises(AttributeError):
        face.score = 0.5  # type: ignore[misc]


# ---------------------------------------------------------------- shared photos


def shared_photo(name: str) -> Image.Image:
    path = SHARED_FACES / name
    if not path.is_file():
        pytest.skip(f"shared test photo {path} is not present")
    return load_image(path)


@pytest.mark.shared_data
def test_shared_no_face_water(detector):
    assert detector.detect(shared_photo("no_face_water.jpg")) == []


@pytest.mark.shared_data
def test_shared_two_people(detector):
    img = shared_photo("two_people_outdoors.jpg")
    faces = detector.detect(img)
    assert len(faces) >= 1
    areas = [f.width * (f.box[3] - f.box[1]) for f in faces]
    assert areas == sorted(areas, reverse=True)
    for face in faces:
        assert_plausible(face, img.size)


@pytest.mark.shared_data
def test_shared_grace_hopper(detector):
    the_one_face(detector, shared_photo("grace_hopper.jpg"))


# ---------------------------------------------------------------- tight crops, group photos

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def portrait(name: str) -> Image.Image:
    return load_image(ASSETS / name)


@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.png"])
@pytest.mark.parametrize("side", [90, 115])
def test_tight_crop_is_found_with_the_same_landmarks(detector, name, side):
    photo = portrait(name)
    (full,) = detector.detect(photo)
    x0, y0, x1, y1 = full.box
    square = max(x1 - x0, y1 - y0)
    left, top = (x0 + x1 - square) / 2, (y0 + y1 - square) / 2
    crop = photo.resize((side, side), Image.Resampling.LANCZOS, box=(left, top, left + square, top + square))
    faces = detector.detect(crop)
    assert len(faces) == 1
    expected = (full.landmarks - [left, top]) * side / square  # the full-photo landmarks mapped through the crop
    assert np.abs(faces[0].landmarks - expected).max() < 3.0


def textured_background(width: int, height: int) -> Image.Image:
    """Foliage-like texture: blurred noise at several scales, the kind of background MTCNN hallucinates faces on."""
    rng = np.random.default_rng(3)
    layers = [
        np.asarray(
            Image.fromarray(rng.integers(0, 256, (height // k, width // k, 3), dtype=np.uint8)).resize(
                (width, height), Image.Resampling.BICUBIC
            ),
            np.float32,
        )
        for k in (4, 16, 64)
    ]
    return Image.fromarray(np.clip(sum(layers) / 3, 0, 255).astype(np.uint8))


GROUP_PLACEMENT = (
    ("astronaut.png", 420, (40, 140)),
    ("grace_hopper.png", 300, (560, 60)),
    ("astronaut.png", 280, (1000, 250)),
)


def group_photo() -> tuple[Image.Image, tuple]:
    """Three portraits of different sizes on a textured 1400x700 background, and their (name, side, top-left)."""
    canvas = textured_background(1400, 700)
    for name, side, at in GROUP_PLACEMENT:
        img = portrait(name)
        canvas.paste(img.resize((side, round(side * img.height / img.width)), Image.Resampling.LANCZOS), at)
    return canvas, GROUP_PLACEMENT


def test_group_photo_returns_every_face_largest_first_and_no_phantom(detector):
    canvas, placed = group_photo()
    faces = detector.detect(canvas)
    assert len(faces) == len(placed)
    areas = [f.width * (f.box[3] - f.box[1]) for f in faces]
    assert areas == sorted(areas, reverse=True)
    lefts = sorted(at[0] for _, _, at in placed)
    assert sorted(min(lefts, key=lambda x: abs(x - f.box[0])) for f in faces) == lefts  # one face per portrait


def test_textured_background_alone_has_no_face(detector):
    assert detector.detect(textured_background(1200, 800)) == []


def test_crop_reaching_outside_the_photo_is_filled_from_its_edge_and_pasted_inside(detector):
    from stargan_app.face.align import FacePaster, align_face

    photo = portrait("astronaut.png")
    (face,) = detector.detect(photo)
    x0, y0, x1, y1 = (round(v) for v in face.box)
    left, top = max(0, x0 - 150), y0 + 10
    tight = photo.crop((left, top, x1 + 150, y1 + 200))  # the top cuts through the hair: the aligned crop needs more
    landmarks = face.landmarks - [left, top]
    aligned = align_face(tight, landmarks, 64)
    arr = np.asarray(aligned.crop)
    assert arr[:4].mean() > 40  # the part above the photo repeats its edge (hair, skin), not black
    edited = Image.new("RGB", (64, 64), (255, 0, 255))
    out = FacePaster(tight, aligned.matrix, (64, 64)).paste(edited)
    assert out.size == tight.size
    changed = np.abs(np.asarray(out, int) - np.asarray(tight, int)).sum(2) > 0
    assert changed.any() and not changed[-20:].any() and not changed[:, -20:].any()  # far from the face: unchanged


@pytest.mark.shared_data
def test_shared_celeba_held_out_faces_are_found(detector):
    folder = SHARED_FACES.parent / "celeba-10k" / "img_align_celeba"
    if not folder.is_dir():
        pytest.skip("../shared/data/celeba-10k is not present")
    found = sum(bool(detector.detect(load_image(folder / f"{i:06d}.jpg"))) for i in range(9001, 10001))
    assert found >= 995  # measured: 999 of 1000


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["astronaut.png", "bryan.png", "chris.jpg", "grace_hopper.jpg", "luciano.png"])
def test_shared_single_portraits_have_exactly_one_face(detector, name):
    assert len(detector.detect(shared_photo(name))) == 1


# ---------------------------------------------------------------- BlazeFace proposals, MTCNN refinement

needs_litert = pytest.mark.skipif(not importlib.util.find_spec("ai_edge_litert"), reason="ai-edge-litert not installed")


class StandInProposer:
    """Stands in for FaceProposer: the boxes it is given (photo px, each with a score 0.9), whatever the pixels;
    counts its calls."""

    def __init__(self, *boxes: tuple[float, float, float, float]):
        self.boxes, self.calls = boxes, 0

    def propose(self, img: Image.Image) -> list[Proposal]:
        self.calls += 1
        return [Proposal(box, np.zeros((6, 2)), 0.9) for box in self.boxes]


def no_search(*args, **kwargs):
    raise AssertionError("MTCNN's full search ran")


def astronaut_on_canvas() -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The astronaut portrait at (300, 150) on a 1200x800 grey canvas, and a tight box round her face there."""
    canvas = Image.new("RGB", (1200, 800), (120, 125, 130))
    canvas.paste(portrait("astronaut.png"), (300, 150))
    return canvas, (300 + 180, 150 + 75, 300 + 270, 150 + 170)


def test_a_proposed_face_is_refined_on_its_crop_without_the_full_search(monkeypatch):
    canvas, box = astronaut_on_canvas()
    proposer = StandInProposer(box)
    det = FaceDetector(proposer=proposer)
    monkeypatch.setattr(det, "search", no_search)
    face = the_one_face(det, canvas)
    assert proposer.calls == 1
    full = FaceDetector(proposer=False).detect(canvas)[0]
    assert np.abs(face.landmarks - full.landmarks).max() < 3.0  # the same face, the same landmarks


def test_a_face_the_proposer_misses_is_found_by_the_full_search():
    canvas, _ = astronaut_on_canvas()
    missed = FaceDetector(proposer=StandInProposer())  # proposes nothing
    wrong = FaceDetector(proposer=StandInProposer((900, 500, 1000, 600)))  # a proposal on the bare canvas
    for det in (missed, wrong):
        face = the_one_face(det, canvas)
        assert 300 < face.box[0] < 812 and det.proposer.calls == 1


def test_refinement_keeps_the_detectors_thresholds():
    canvas, box = astronaut_on_canvas()
    assert FaceDetector(min_face_px=200, proposer=StandInProposer(box)).detect(canvas) == []
    small = canvas.resize((240, 160), Image.Resampling.LANCZOS)  # her face is ~18 px: under every floor
    assert FaceDetector(proposer=StandInProposer(tuple(v / 5 for v in box))).detect(small) == []


def test_a_proposal_off_the_photo_edge_is_refined_on_an_edge_padded_crop(monkeypatch):
    photo = portrait("astronaut.png")
    (full,) = FaceDetector(proposer=False).detect(photo)
    x0, y0, x1, y1 = full.box
    crop = photo.crop((round(x0) - 10, round(y0) - 30, round(x1) + 10, round(y1) + 20))  # the face fills it
    det = FaceDetector(proposer=StandInProposer((5.0, 25.0, crop.width - 5.0, crop.height - 15.0)))
    monkeypatch.setattr(det, "search", no_search)
    face = the_one_face(det, crop)
    expected = full.landmarks - [round(x0) - 10, round(y0) - 30]
    assert np.abs(face.landmarks - expected).max() < 3.0


def test_ssd_anchors_follow_the_mediapipe_graphs():
    short, full = ssd_anchors(SHORT_RANGE), ssd_anchors(FULL_RANGE)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # short range: 16x16 cells with 2 anchors each, then 8x8 cells with 6 (three stride-16 layers, two anchors each)
    assert np.allclose(short[0], short[1]) and np.allclose(short[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(short[2], [1.5 / 16, 0.5 / 16]) and np.allclose(short[511], [15.5 / 16, 15.5 / 16])
    assert np.allclose(short[512:518], [0.5 / 8, 0.5 / 8]) and np.allclose(short[518], [1.5 / 8, 0.5 / 8])
    assert np.allclose(full[0], [0.5 / 48, 0.5 / 48]) and np.allclose(full[48], [0.5 / 48, 1.5 / 48])


def test_decode_and_weighted_nms():
    anchors = ssd_anchors(SHORT_RANGE)
    regressors, logits = np.zeros((896, 16)), np.full(896, -10.0)
    k = 512 + 6 * (3 * 8 + 4)  # the first anchor of cell (4, 3) of the 8x8 grid: centre (4.5 / 8, 3.5 / 8)
    regressors[k, :4] = [12.8, -6.4, 32.0, 38.4]  # x, y offsets and w, h in input px (128)
    regressors[k, 4:] = np.tile([-6.4, 0.0], 6)
    regressors[k + 1] = regressors[k]  # a second anchor of the same cell agrees, with the same box
    logits[k] = logits[k + 1] = 3.0
    boxes, keypoints, scores = decode(regressors, logits, anchors, 128, SHORT_RANGE.min_score)
    assert len(boxes) == 2 and np.allclose(scores, 1 / (1 + np.exp(-3.0)))
    cx, cy = 4.5 / 8 + 0.1, 3.5 / 8 - 0.05
    assert np.allclose(boxes[0], [cx - 0.125, cy - 0.15, cx + 0.125, cy + 0.15])
    assert np.allclose(keypoints[0], np.tile([4.5 / 8 - 0.05, 3.5 / 8], (6, 1)))
    shifted = boxes[1] + 0.01
    merged = weighted_nms(np.stack([boxes[0], shifted]), keypoints, np.array([0.9, 0.6]))
    assert len(merged) == 1 and merged[0][2] == 0.9
    assert np.allclose(merged[0][0], (0.9 * boxes[0] + 0.6 * shifted) / 1.5)
    apart = weighted_nms(np.stack([boxes[0], boxes[0] + 0.5]), keypoints, np.array([0.6, 0.9]))
    assert [round(s, 1) for _, _, s in apart] == [0.9, 0.6]


def test_without_the_runtime_the_detector_searches_and_says_so(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # `import ai_edge_litert` raises ImportError
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    det = FaceDetector()
    with caplog.at_level(logging.WARNING, logger="stargan_app.face.propose"):
        assert det.proposer is None
    assert any("ai-edge-litert is not installed" in r.getMessage() for r in caplog.records)
    the_one_face(det, portrait("astronaut.png"))


def test_the_vendored_blazeface_files_are_the_ones_extract_py_checks():
    for name, digest in PROPOSER_FILES.items():
        assert hashlib.sha256((PROPOSER_DIR / name).read_bytes()).hexdigest() == digest, name
    assert all(name in (PROPOSER_DIR / "NOTICE").read_text() for name in PROPOSER_FILES)


@needs_litert
def test_blazeface_proposes_the_faces_of_a_group_photo():
    proposer = load_proposer()
    assert proposer is not None
    canvas, placed = group_photo()
    proposals = proposer.propose(canvas)
    assert len(proposals) == len(placed)
    for _, side, (x, y) in placed:  # one proposal on each portrait's face (its middle half, its upper half)
        assert any(
            x + side / 4 < (p.box[0] + p.box[2]) / 2 < x + 3 * side / 4 and y < p.box[1] < y + side / 2
            for p in proposals
        )
    assert proposer.propose(textured_background(1200, 800)) == []
    assert proposer.propose(Image.new("RGB", (640, 480), (255, 255, 255))) == []


def assert_same_faces(photo: Image.Image, tolerance: float = 0.07) -> None:
    """The proposal path finds the faces MTCNN's full search finds, with landmarks within `tolerance` face widths.
    MTCNN's own landmarks move by as much with the scale it sees a face at: on two_people_outdoors.jpg, its search
    at 800 px and at full resolution differ by 5.0% and 3.7% of the two faces' widths (the proposal path: 3.8%,
    6.3%)."""
    proposed, searched = FaceDetector().detect(photo), FaceDetector(proposer=False).detect(photo)
    assert len(proposed) == len(searched)
    for a, b in zip(proposed, searched):
        assert np.abs(a.landmarks - b.landmarks).max() < tolerance * b.width, (a.landmarks, b.landmarks)


@needs_litert
@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.png"])
def test_proposed_landmarks_agree_with_the_full_search(name):
    assert_same_faces(portrait(name))
    (face,) = FaceDetector().detect(portrait(name))
    (full,) = FaceDetector(proposer=False).detect(portrait(name))
    assert np.abs(face.landmarks - full.landmarks).max() < 6.0  # px, on faces 90-180 px wide


@needs_litert
@pytest.mark.shared_data
@pytest.mark.parametrize(
    "name", ["astronaut.png", "bryan.png", "chris.jpg", "grace_hopper.jpg", "luciano.png", "two_people_outdoors.jpg"]
)
def test_shared_proposed_landmarks_agree_with_the_full_search(name):
    assert_same_faces(shared_photo(name))
