"""First edit of a large photo, end to end (decode, detect, align, edit, paste back), ours vs the naive path.

    python benchmarks/edit_latency.py                 # 4000x3000 JPEG with one face, 2 threads
    python benchmarks/edit_latency.py --threads 1 --repeats 3
    python benchmarks/edit_latency.py --threads 1 --no-naive   # only the served paste-back settings

Rows: the served editor (BlazeFace proposals refined by MTCNN, region maps + guided paste-back, when the maps ship
beside the weights, and the person and skin masks of hair edits); the same without the masks; the same editor with
the maps off (the ellipse and the plain warp, as before the maps); the served editor without the hair-colour
model; the naive path, which runs MTCNN on the
full-resolution photo (no proposer, no first pass), then the same G and paste-back. All are measured in one run,
uncached (a fresh detection cache, and so fresh masks, for every repeat), and the naive/ours ratio is printed. Below
them, a row per stage of the served editor's first edit (median seconds spent in each step; "other" is the rest).
Use an idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stargan_app.face.detect import FaceDetector
from stargan_app.imaging import load_image
from stargan_app.inference import FaceEditor, face_editor

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


@contextlib.contextmanager
def stage_clock(editor: FaceEditor) -> Iterator[dict[str, float]]:
    """Seconds spent in each step of the editor's pipeline while the block runs (the steps wrapped in timers)."""
    times: dict[str, float] = defaultdict(float)
    steps: list[tuple[Any, str, str]] = [
        (face_editor, "load_image", "decode (the editor's own copy)"),
        (editor.detector, "refine", "refine (MTCNN on the proposals)"),
        (editor.detector, "search", "search (MTCNN, when no proposal)"),
        (face_editor, "align_face", "align"),
        (editor, "estimate_attributes", "D (attributes of the face)"),
        (editor, "_generate", "G (edit + no-edit reference)"),
        (editor.compositor, "gate", "gate (region maps x masks)"),
        (editor.compositor, "paste_change", "guided paste-back"),
        (editor.compositor, "hair_matte", "hair matte and its reading"),
        (editor.compositor, "recolour_hair", "hair-colour model"),
    ]
    if editor.detector.proposer is not None:
        steps.append((editor.detector.proposer, "propose", "propose (BlazeFace)"))
    if editor.segmenter is not None:
        steps.append((editor.segmenter, "masks", "person & skin masks"))

    def timed(fn: Callable, name: str) -> Callable:
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[name] += time.perf_counter() - start

        return run

    originals = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in steps]
    for obj, attr, name in steps:
        object.__setattr__(obj, attr, timed(getattr(obj, attr), name))  # frozen dataclasses too
    try:
        yield times
    finally:
        for obj, attr, original in originals:
            if obj is face_editor:
                setattr(obj, attr, original)
            else:
                object.__delattr__(obj, attr)  # the class's method shows again


def stages(editor: FaceEditor, data: bytes, repeats: int) -> dict[str, float]:
    """Median seconds per step of an uncached first edit, and the total."""
    runs = []
    for _ in range(repeats):
        editor.clear_detections()
        start = time.perf_counter()
        with stage_clock(editor) as times:
            photo = load_image(io.BytesIO(data))
            times["decode (JPEG)"] = time.perf_counter() - start
            editor.edit(photo, {"Blond_Hair": True})
        times["total"] = time.perf_counter() - start
        times["other"] = 2 * times["total"] - sum(times.values())
        runs.append(dict(times))
    return {name: statistics.median(r.get(name, 0.0) for r in runs) for name in runs[0]}


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
    editors = {
        "ours": ours,
        "ours, no hair-colour model": FaceEditor.from_pretrained(args.weights, hair_colours=False),
        "ours, no person/skin masks": FaceEditor.from_pretrained(args.weights, person_masks=False),
        "ours, region maps off": FaceEditor.from_pretrained(args.weights, regions=False),
    }
    if not args.no_naive:  # MTCNN on every pixel
        naive = FaceDetector(max_side=10**6, proposer=False)
        naive.first_pass_face_fraction = 0.0  # one full search, as before the first pass and the proposer existed
        editors["naive (MTCNN at full resolution)"] = FaceEditor(ours.G, ours.D, detector=naive)
    for editor in editors.values():
        first_edit(editor, data)  # build MTCNN, warm the kernels
    print(f"4000x3000 JPEG, one face, {args.threads} threads, median of {args.repeats} uncached first edits")
    print(
        f"  ours: region maps {'on' if ours.regions else 'absent'}, guided paste-back {'on' if ours.guided else 'off'},"
        f" person/skin masks {'on' if ours.segmenter else 'off (no ai-edge-litert)'}"
    )
    rows = {}
    for name, editor in editors.items():
        rows[name] = statistics.median(first_edit(editor, data)[0] for _ in range(args.repeats))
        print(f"  {name:34s} {rows[name] * 1000:8.1f} ms", flush=True)
    if not args.no_naive:
        print(f"  naive / ours: {rows['naive (MTCNN at full resolution)'] / rows['ours']:.2f}x")
    print("  stages of ours (median):")
    for name, seconds in stages(ours, data, args.repeats).items():
        print(f"    {name:32s} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
