"""Batch editing of photo files (the `edit` command): one FaceEditor edit per photo; a photo that fails is
reported in its FileReport and the batch goes on."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from stargan_app.errors import StarGANAppError
from stargan_app.imaging import load_image
from stargan_app.inference.face_editor import FaceEditor

# Suffixes an edited photo keeps; any other input (e.g. .gif) is written as PNG.
OUTPUT_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
JPEG_QUALITY = 95


@dataclass
class FaceReport:
    index: int  # the face's index (largest first), as --face / face_index take it
    box: list[float]  # (x0, y0, x1, y1) in the photo's pixels
    score: float  # detector confidence
    attributes_before: dict[str, float] | None  # D's estimate before the edit, None without D
    edited: bool


@dataclass
class FileReport:
    input: str
    output: str | None = None  # the edited photo written, None when nothing was
    faces: list[FaceReport] = field(default_factory=list)
    error: str | None = None  # why nothing was written, for a person

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def output_path(photo: Path, out_dir: Path) -> Path:
    """out_dir/<the photo's name>, with the photo's suffix when it can be written, else .png."""
    suffix = photo.suffix.lower()
    return out_dir / (photo.stem + (suffix if suffix in OUTPUT_FORMATS else ".png"))


def edit_file(
    editor: FaceEditor,
    photo: Path,
    targets: Mapping[str, bool],
    out_dir: Path,
    strength: float = 1.0,
    face_index: int | None = None,
    overwrite: bool = False,
) -> FileReport:
    """Edit one photo file (every face, or only face `face_index`) and write it to out_dir; never raises for a bad
    photo, a photo without that face or an output that cannot be written: the report's `error` says what happened."""
    report = FileReport(str(photo))
    out = output_path(photo, out_dir)
    if out.exists() and not overwrite:
        report.error = f"{out} already exists; not overwritten (pass --overwrite to replace it)."
        return report
    try:
        image = load_image(photo)
        faces = editor.detect(image)
        if face_index is None:
            result = editor.edit_all_faces(image, targets, strength)
        else:
            result = editor.edit(image, targets, strength, face_index=face_index)
        report.faces = [
            FaceReport(
                i,
                [round(float(v), 1) for v in face.box],
                round(float(face.score), 4),
                editor.prepare(image, i).attributes,
                face_index in (None, i),
            )
            for i, face in enumerate(faces)
        ]
    except StarGANAppError as e:
        report.error = str(e)
        return report
    try:
        save_atomically(result.image, out)
    except (OSError, ValueError) as e:
        report.error = f"Could not write {out} ({e.strerror if isinstance(e, OSError) and e.strerror else e})."
        return report
    report.output = str(out)
    return report


def save_atomically(image: Image.Image, out: Path) -> None:
    """Write the image next to `out` and rename it into place, so an interrupted batch leaves no half-written file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    fmt = OUTPUT_FORMATS[out.suffix.lower()]
    try:
        image.save(partial, format=fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def edit_files(
    editor: FaceEditor,
    photos: Iterable[Path],
    targets: Mapping[str, bool],
    out_dir: Path,
    strength: float = 1.0,
    face_index: int | None = None,
    overwrite: bool = False,
) -> Iterator[FileReport]:
    """edit_file over photos, one report per photo in order; two photos that would write the same output file
    (a.jpg in two folders) are refused after the first."""
    written: dict[Path, str] = {}
    for photo in photos:
        out = output_path(photo, out_dir)
        if out in written:
            yield FileReport(str(photo), error=f"{written[out]} was already written to {out} in this batch.")
            continue
        report = edit_file(editor, photo, targets, out_dir, strength, face_index, overwrite)
        if report.ok:
            written[out] = report.input
        yield report
