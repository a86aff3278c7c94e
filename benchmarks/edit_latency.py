"""First edit of a large photo, end to end (decode, detect, align, edit, paste back), ours vs the naive path.

    python benchmarks/edit_latency.py                 # 4000x3000 JPEG with one face, 2 threads
    python benchmarks/edit_latency.py --threads 1 --repeats 3
    python benchmarks/edit_latency.py --threads 1 --no-naive   # only the served paste-back settings

Rows: the served editor (region maps + guided paste-back, when the maps ship beside the weights); the same editor
with the maps off (the ellipse and the plain warp, as before the maps); the naive path, which runs MTCNN on the
full-resolution photo, then the same G and paste-back. All are measured in one run, uncached (a fresh detection
cache for every repeat), and the naive/ours ratio is printed. Use an idle machine.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stargan_app.face.detect import FaceDetector
from stargan_app.imaging import load_image
from stargan_app.inference import FaceEditor

ROOT = Path(__file__).resolve().parents[1]


def big_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """The astronaut portrait placed in a large photo (face about 500 px wide), as JPEG bytes."""
    face = Image.open(ROOT / "assets" / "astronaut.png").convert("RGB").resize((2200, 2200), Image.Resampling.BICUBIC)
    photo = Image.new("RGB", (width, height), (90, 110, 130))
    photo.paste(face, (900, 400))
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def first_edit(editor: FaceEditor, data: bytes) -> tuple[float, tuple[int, int]]:
    editor.clear_detections()  # uncached: the first edit of a photo
    start = time.perf_counter()
    result = editor.edit(load_image(io.BytesIO(data)), {"Blond_Hair": True})
    return time.perf_counter() - start, result.image.size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--weights", default=None)
    p.add_argument("--no-naive", action="store_true", help="skip the naive path (seconds per repeat)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = big_jpeg()
    ours = FaceEditor.from_pretrained(args.weights)
    editors = {"ours": ours, "ours, region maps off": FaceEditor.from_pretrained(args.weights, regions=False)}
    if not args.no_naive:  # MTCNN on every pixel
        editors["naive (MTCNN at full resolution)"] = FaceEditor(ours.G, ours.D, detector=FaceDetector(max_side=10**6))
    for editor in editors.values():
        first_edit(editor, data)  # build MTCNN, warm the kernels
    rows = {
        name: statistics.median(first_edit(editor, data)[0] for _ in range(args.repeats))
        for name, editor in editors.items()
    }
    print(f"4000x3000 JPEG, one face, {args.threads} threads, median of {args.repeats} uncached first edits")
    print(
        f"  ours: region maps {'on' if ours.regions else 'absent'}, guided paste-back {'on' if ours.guided else 'off'}"
    )
    for name, seconds in rows.items():
        print(f"  {name:34s} {seconds * 1000:8.1f} ms")
    if not args.no_naive:
        print(f"  naive / ours: {rows['naive (MTCNN at full resolution)'] / rows['ours']:.2f}x")


if __name__ == "__main__":
    main()
