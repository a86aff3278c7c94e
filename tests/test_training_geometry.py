"""One geometry: faces in the training crops sit where serving's alignment puts them (needs ../shared/data)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stargan_app.face.align import celeba_reference_points
from stargan_app.face.detect import FaceDetector

CELEBA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba-10k" / "img_align_celeba"
SIZE = 64


@pytest.mark.shared_data
def test_mtcnn_landmarks_on_training_crops_land_on_the_serving_reference_points():
    if not CELEBA.is_dir():
        pytest.skip("../shared/data/celeba-10k is not present")
    detector = FaceDetector(min_face_px=20)
    errors = []
    for i in range(9001, 9021):
        img = Image.open(CELEBA / f"{i:06d}.jpg").convert("RGB")
        w, h = img.size
        up = 4  # MTCNN misses faces that fill a small frame; give it a bigger copy with a border
        canvas = Image.new("RGB", (w * up * 2, h * up * 2), (127, 127, 127))
        canvas.paste(img.resize((w * up, h * up), Image.Resampling.BICUBIC), (w * up // 2, h * up // 2))
        faces = detector.detect(canvas)
        if not faces:
            continue
        lm = (faces[0].landmarks - [w * up // 2, h * up // 2]) / up  # back to the 89x109 image
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        crop = (lm - [left, top]) * SIZE / side  # the training crop: celeba_center_crop geometry
        points = np.stack([crop[0], crop[1], (crop[3] + crop[4]) / 2])
        errors.append(np.linalg.norm(points - celeba_reference_points(SIZE), axis=1).mean())
    assert len(errors) >= 15
    assert float(np.median(errors)) < 1.0, errors  # pixels at 64 px (measured: 0.78)
