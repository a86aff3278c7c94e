"""Reproduce the vendored MediaPipe models from the mediapipe 0.10.21 wheel on PyPI and check their SHA-256.

    pip download --no-deps mediapipe==0.10.21 -d /tmp/mediapipe-wheel
    python stargan_app/face/models/extract.py /tmp/mediapipe-wheel/mediapipe-0.10.21-*.whl

Writes the four .tflite files beside this script (Apache-2.0, see NOTICE here) and exits non-zero when a file in the
wheel is missing or its digest differs from the one recorded in stargan_app/face/segment.py (the person and landmark
models) or stargan_app/face/propose.py (the BlazeFace detectors); any platform's wheel of 0.10.21 carries the same
model files.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from stargan_app.face.propose import PROPOSER_FILES  # noqa: E402 (after the path set-up)
from stargan_app.face.segment import MODEL_FILES  # noqa: E402

DIGESTS = {**MODEL_FILES, **PROPOSER_FILES}

WHEEL_PATHS = {  # vendored name -> path inside the wheel
    "selfie_segmentation.tflite": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    "face_landmark.tflite": "mediapipe/modules/face_landmark/face_landmark.tflite",
    **{
        name: f"mediapipe/modules/face_detection/{name}"
        for name in ("face_detection_short_range.tflite", "face_detection_full_range_sparse.tflite")
    },
}


def extract(wheel: Path, out_dir: Path = HERE) -> list[str]:
    """Copy the models out of the wheel into out_dir; returns the problems found (empty: all digests match)."""
    problems = []
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name, inner in WHEEL_PATHS.items():
            if inner not in names:
                problems.append(f"{inner} is not in {wheel.name}")
                continue
            data = zf.read(inner)
            digest = hashlib.sha256(data).hexdigest()
            if digest != DIGESTS[name]:
                problems.append(f"{name}: sha256 {digest}, expected {DIGESTS[name]}")
                continue
            (out_dir / name).write_bytes(data)
            print(f"{name}  {len(data)} bytes  sha256 {digest}")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("wheel", type=Path, help="mediapipe-0.10.21-*.whl (pip download --no-deps mediapipe==0.10.21)")
    p.add_argument("--out-dir", type=Path, default=HERE)
    args = p.parse_args()
    problems = extract(args.wheel, args.out_dir)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
