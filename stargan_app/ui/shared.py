"""What every part of the UI shares: the loaded models, concurrency groups, error handling and result files."""

from __future__ import annotations

import functools
import hashlib
import io
import tempfile
from functools import lru_cache
from pathlib import Path

import gradio as gr
from PIL import Image

from stargan_app.errors import StarGANAppError
from stargan_app.inference import ClassSampler, FaceEditor, PreparedFace
from stargan_app.labels import is_present
from stargan_app.runtime import CONCURRENCY

KEEP = "keep"
# Every event that runs a model belongs to one of two concurrency groups, so the whole app never runs more
# than CONCURRENCY face jobs (and one cheap CGAN job beside them) at a time, however many events exist.
FACE_JOBS = {"concurrency_id": "face", "concurrency_limit": CONCURRENCY}
CGAN_JOBS = {"concurrency_id": "cgan", "concurrency_limit": 1}
ASSETS = Path(__file__).resolve().parents[2] / "assets"


@lru_cache(maxsize=1)
def editor() -> FaceEditor:
    return FaceEditor.from_pretrained()


@lru_cache(maxsize=2)
def sampler(dataset: str) -> ClassSampler:
    return ClassSampler.from_pretrained(dataset)


def try_editor() -> tuple[FaceEditor | None, str]:
    try:
        return editor(), ""
    except StarGANAppError as e:
        return None, f"The face editor is unavailable: {e}"


def require_editor() -> FaceEditor:
    ed, message = try_editor()
    if ed is None:
        raise gr.Error(message)
    return ed


def friendly(fn):
    """Turn the app's own errors into a Gradio message box instead of a traceback; keeps fn's signature and
    docstring (Gradio reads both for the API page and the MCP tool schema)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StarGANAppError as e:
            raise gr.Error(str(e)) from None

    return wrapper


def other_attributes(ed: FaceEditor) -> list[str]:
    """The on/off attributes (everything but the exclusive hair colours)."""
    return [a for a in ed.attributes if a not in ed.schema.exclusive]


def present_attributes(ed: FaceEditor, source: dict[str, float] | None) -> list[str]:
    """The on/off attributes the face already shows, by D's estimate."""
    return [a for a in other_attributes(ed) if is_present(source, a)]


def read_hair_colour(prep: PreparedFace | None) -> str:
    """The hair-colour choice a face starts with: the colour its hair's own pixels read as (FaceEditor's hair-colour
    model), or KEEP without that reading."""
    reading = prep.hair.reading if prep is not None and prep.hair is not None else None
    return reading.colour if reading is not None else KEEP


def edit_targets(
    ed: FaceEditor, hair: str, checked: list[str] | None, source: dict[str, float] | None
) -> dict[str, bool]:
    """Only what the user changed relative to the detected attributes becomes a target."""
    source = source or {}
    targets: dict[str, bool] = {name: True for name in checked or [] if name not in ed.attributes}  # edit() names them
    if hair and hair != KEEP and not is_present(source, hair):  # the colour the hair already reads as: kept
        targets[hair] = True
    for name in other_attributes(ed):
        on = name in (checked or [])
        if on != is_present(source, name):
            targets[name] = on
    return targets


RESULTS_DIR = Path(tempfile.gettempdir()) / "stargan-app-results"
PNG_MAX_PIXELS = 1_000_000  # above this the result photo is sent as JPEG: a 12 MP PNG takes 3 s to encode, JPEG 36 ms
KEEP_RESULT_FILES = 64


def result_file(image: Image.Image, prefix: str = "edited", keep: int | None = None) -> str:
    """Encode a photo ourselves (Gradio would write PNG or WebP at any size) and return its path: PNG up to
    PNG_MAX_PIXELS, JPEG q95 above. Only the newest `keep` files with this prefix stay (Gradio has copied the
    older ones into its own cache by then)."""
    big = image.width * image.height > PNG_MAX_PIXELS
    buf = io.BytesIO()
    if big:
        image.save(buf, "JPEG", quality=95)
    else:
        image.save(buf, "PNG")
    data = buf.getvalue()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{prefix}-{hashlib.blake2b(data, digest_size=12).hexdigest()}.{'jpg' if big else 'png'}"
    path.write_bytes(data)
    keep = KEEP_RESULT_FILES if keep is None else keep
    for old in sorted(RESULTS_DIR.glob(f"{prefix}-*"), key=lambda p: p.stat().st_mtime)[:-keep]:
        old.unlink(missing_ok=True)
    return str(path)
