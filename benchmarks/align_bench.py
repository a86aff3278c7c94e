"""Time face detection, alignment and paste-back on a 12 MP (4000x3000) photo of the astronaut portrait."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stargan_app.face.align import align_face, paste_back
from stargan_app.face.detect import FaceDetector

SHARED_ASTRONAUT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "astronaut.png"


def astronaut() -> Image.Image:
    try:
        from skimage import data
    except ImportError:
        return Image.open(SHARED_ASTRONAUT).convert("RGB")
    return Image.fromarray(data.astronaut())


def photo_12mp() -> Image.Image:
    rng = np.random.default_rng(0)
    background = Image.fromarray(rng.integers(60, 200, (300, 400, 3), dtype=np.uint8)).resize((4000, 3000))
    background.paste(astronaut().resize((3000, 3000), Image.Resampling.LANCZOS), (500, 0))
    return background


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", type=int, default=128, help="aligned crop size")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    img = photo_12mp()
    detector = FaceDetector()
    faces = detector.detect(img)
    if not faces:
        raise SystemExit("no face found in the benchmark image")
    face = faces[0]
    aligned = align_face(img, face.landmarks, args.size)
    print(
        f"image {img.width}x{img.height}, face width {face.width:.0f} px, crop {args.size}, "
        f"torch threads {torch.get_num_threads()}"
    )
    for name, fn in [
        ("detect", lambda: detector.detect(img)),
        ("align_face", lambda: align_face(img, face.landmarks, args.size)),
        ("paste_back", lambda: paste_back(img, aligned.crop, aligned.matrix)),
    ]:
        median, best = timed(fn, args.repeats)
        print(f"{name:>11}: median {median:7.1f} ms   best {best:7.1f} ms")


if __name__ == "__main__":
    main()
