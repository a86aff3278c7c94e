"""The Gradio app (the only module that imports gradio): face editor, digits & clothing, about."""

from __future__ import annotations

import hashlib
import io
import os
import random
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import gradio as gr
from PIL import Image

from stargan_app.checkpoint import WEIGHTS_DIR
from stargan_app.errors import StarGANAppError
from stargan_app.inference import ClassSampler, FaceEditor, PreparedFace
from stargan_app.inference.face_editor import NO_FACE_MESSAGE
from stargan_app.labels import display_name
from stargan_app.publish import strip_front_matter
from stargan_app.runtime import CONCURRENCY, configure_threads, queue_size

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


def _try_editor() -> tuple[FaceEditor | None, str]:
    try:
        return editor(), ""
    except StarGANAppError as e:
        return None, f"The face editor is unavailable: {e}"


def _friendly(fn):
    """Turn the app's own errors into a message box instead of a traceback."""

    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StarGANAppError as e:
            raise gr.Error(str(e)) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _targets(ed: FaceEditor, hair: str, checked: list[str], source: dict[str, float] | None) -> dict[str, bool]:
    """Only what the user changed relative to the detected attributes becomes a target."""
    source = source or {}
    targets: dict[str, bool] = {name: True for name in checked or [] if name not in ed.attributes}  # edit() names them
    if hair and hair != KEEP:
        targets[hair] = True
    for name in ed.attributes:
        if name in ed.schema.exclusive:
            continue
        on = name in (checked or [])
        if on != (source.get(name, 0.0) >= 0.5):
            targets[name] = on
    return targets


RESULTS_DIR = Path(tempfile.gettempdir()) / "stargan-app-results"
PNG_MAX_PIXELS = 1_000_000  # above this the result photo is sent as JPEG: a 12 MP PNG takes 3 s to encode, JPEG 36 ms
KEEP_RESULT_FILES = 64


def _result_file(image: Image.Image) -> str:
    """Encode an edited photo ourselves (Gradio would write PNG at any size) and return its path."""
    big = image.width * image.height > PNG_MAX_PIXELS
    buf = io.BytesIO()
    if big:
        image.save(buf, "JPEG", quality=95)
    else:
        image.save(buf, "PNG")
    data = buf.getvalue()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"edited-{hashlib.blake2b(data, digest_size=12).hexdigest()}.{'jpg' if big else 'png'}"
    path.write_bytes(data)
    for old in sorted(RESULTS_DIR.glob("edited-*"), key=lambda p: p.stat().st_mtime)[:-KEEP_RESULT_FILES]:
        old.unlink(missing_ok=True)  # Gradio has copied it into its own cache by now
    return str(path)


def _other_attributes(ed: FaceEditor) -> list[str]:
    return [a for a in ed.attributes if a not in ed.schema.exclusive]


@_friendly
def detect_api(image: Image.Image | None) -> list[dict]:
    """Detect faces: a list of {box, landmarks, score}, largest first."""
    if image is None:
        raise gr.Error("Please upload an image.")
    return [f.to_dict() for f in _require_editor().detect(image)]


@_friendly
def edit_api(image, hair: str = KEEP, attributes: list[str] | None = None, strength: float = 1.0, face_index: int = 0,
             keep_detail: bool = True):
    """Edit one face: hair colour (or 'keep'), attributes to switch on, strength, whether to keep the photo's
    detail (paste only the model's change); returns the full photo."""
    if image is None:
        raise gr.Error("Please upload an image.")
    ed = _require_editor()
    prep = ed.prepare(image, int(face_index))
    checked = attributes if attributes is not None else [a for a in _other_attributes(ed) if (prep.attributes or {}).get(a, 0) >= 0.5]
    targets = _targets(ed, hair, checked, prep.attributes)
    return _result_file(ed.edit(prep, targets, strength=float(strength), keep_detail=bool(keep_detail)).image)


@_friendly
def preview_api(image, face_index: int = 0) -> Image.Image:
    """Grid of every single-attribute edit of one face."""
    if image is None:
        raise gr.Error("Please upload an image.")
    return _require_editor().preview_grid(image, int(face_index))


@_friendly
def sample_api(dataset: str = "mnist", label: str = "0", n: int = 16, seed: int = 0) -> list[Image.Image]:
    """n samples of one class, upscaled for display."""
    images = sampler(dataset).sample(label, n=int(n), seed=int(seed))
    return [im.resize((112, 112), Image.NEAREST) for im in images]


@_friendly
def sample_grid_api(dataset: str = "mnist", seed: int = 0) -> Image.Image:
    """A grid with a row per class."""
    grid = sampler(dataset).grid(n_per_class=8, seed=int(seed))
    return grid.resize((grid.width * 3, grid.height * 3), Image.NEAREST)


def _require_editor() -> FaceEditor:
    ed, message = _try_editor()
    if ed is None:
        raise gr.Error(message)
    return ed


def _about() -> str:
    parts = ["# About\n"]
    for name, load in (("StarGAN", lambda: editor()), ("CGAN MNIST", lambda: sampler("mnist")),
                       ("CGAN Fashion", lambda: sampler("fashion"))):
        try:
            info = load().info
            parts.append(f"- **{name}**: `{Path(info.get('path', '')).name}`, {info.get('steps', '?')} steps on "
                         f"{info.get('hardware', '?')}; data: {info.get('data', '?')}")
        except StarGANAppError as e:
            parts.append(f"- **{name}**: not available ({e})")
    card = WEIGHTS_DIR / "README.md"
    if card.exists():
        parts.append("\n" + strip_front_matter(card.read_text()))
    return "\n".join(parts)


def build() -> gr.Blocks:
    ed, missing = _try_editor()
    with gr.Blocks(title="StarGAN face editor") as demo:
        gr.Markdown("# StarGAN face editor\nUpload a photo, pick the changes, and get your photo back edited.")
        with gr.Tab("Face editor"):
            if ed is None:
                gr.Markdown(f"**{missing}**")
            prepared = gr.State(None)
            with gr.Row():
                with gr.Column():
                    photo = gr.Image(type="pil", label="Photo", sources=["upload", "webcam", "clipboard"])
                    # fit_columns=False: one face must stay a thumbnail, not one zoomed full-width square
                    faces = gr.Gallery(label="Faces found (click one to edit it)", columns=6, height=150,
                                       object_fit="contain", allow_preview=False, fit_columns=False, visible=False)
                    face_index = gr.Number(value=0, precision=0, visible=False)
                    hair_choices = [("Keep", KEEP)] + [(display_name(a), a) for a in ed.schema.exclusive] if ed else [KEEP]
                    hair = gr.Radio(hair_choices, value=KEEP, label="Hair colour")
                    others = gr.CheckboxGroup([(display_name(a), a) for a in _other_attributes(ed)] if ed else [],
                                              label="Attributes")
                    strength = gr.Slider(0, 2, value=1, step=0.1, label="Intensity")
                    # a masked model's edit is always local and keeps the photo's own texture: no choice to offer
                    keep_detail = gr.Checkbox(value=True, label="Blend the change into the photo's own detail (sharper)",
                                              visible=bool(ed) and not ed.masked)
                    with gr.Row():
                        edit_btn = gr.Button("Edit", variant="primary")
                        grid_btn = gr.Button("Show every single edit")
                        reset_btn = gr.Button("Reset")
                    status = gr.Markdown()
                with gr.Column():
                    result = gr.Image(type="pil", label="Edited photo", format="png")
                    with gr.Row():
                        before = gr.Image(type="pil", label="Face before", height=160)
                        after = gr.Image(type="pil", label="Face after", height=160)
                    grid = gr.Gallery(label="Every single edit (click one to apply it)", columns=3, height="auto",
                                      object_fit="contain", allow_preview=False, fit_columns=False)
            examples = [str(p) for p in sorted(ASSETS.glob("*.png"))]
            if examples:
                gr.Examples(examples, inputs=photo)

            def on_upload(image, index):
                if image is None or ed is None:
                    return None, gr.update(value=[], visible=False), gr.update(), "" if ed else missing, 0
                try:
                    found = ed.detect(image)
                    if not found:
                        gr.Warning(NO_FACE_MESSAGE)
                        return None, gr.update(value=[], visible=False), gr.update(value=[]), NO_FACE_MESSAGE, 0
                    index = int(index) if 0 <= int(index or 0) < len(found) else 0
                    prep = ed.prepare(image, index)
                except StarGANAppError as e:
                    gr.Warning(str(e))
                    return None, gr.update(value=[], visible=False), gr.update(value=[]), str(e), 0
                thumbs = [(t, f"Face {k + 1}") for k, t in enumerate(ed.face_thumbnails(image)[:12])]
                present = [a for a in _other_attributes(ed) if (prep.attributes or {}).get(a, 0) >= 0.5]
                note = f"{len(found)} face(s) found; editing face {index + 1}."
                picker = gr.update(value=thumbs, selected_index=index, visible=len(found) > 1)
                return prep, picker, gr.update(value=present), note, index

            def on_select(image, evt: gr.SelectData):
                return on_upload(image, evt.index)

            def on_edit(prep: PreparedFace | None, hair_value, checked, strength_value, detail):
                if prep is None or ed is None:
                    return None, None, None, "Upload a photo with a face first."
                try:
                    r = ed.edit(prep, _targets(ed, hair_value, checked, prep.attributes), strength=float(strength_value),
                                keep_detail=bool(detail))
                except StarGANAppError as e:
                    return None, None, None, str(e)
                return _result_file(r.image), r.face_before, r.face_after, gr.update()

            def on_grid(prep: PreparedFace | None):
                if prep is None or ed is None:
                    return None, []
                previews = ed.edit_previews(prep)
                return [(p.image, p.caption) for p in previews], [p.targets for p in previews]

            def on_preview_select(prep: PreparedFace | None, targets_per_tile, strength_value, evt: gr.SelectData):
                """Clicking a tile sets the controls to that edit (from the face's own attributes) and applies it."""
                if prep is None or ed is None or not targets_per_tile:
                    return gr.update(), gr.update(), None, None, None, gr.update()
                targets = targets_per_tile[evt.index]
                source = prep.attributes or {}
                hair_value = next((a for a, on in targets.items() if on and a in ed.schema.exclusive), KEEP)
                checked = [a for a in _other_attributes(ed) if targets.get(a, source.get(a, 0.0) >= 0.5)]
                r = ed.edit(prep, targets, strength=float(strength_value))
                return hair_value, checked, _result_file(r.image), r.face_before, r.face_after, gr.update()

            def on_reset(prep: PreparedFace | None):
                source = (prep.attributes if prep else None) or {}
                present = [a for a in _other_attributes(ed) if source.get(a, 0) >= 0.5] if ed else []
                return KEEP, present, 1.0, None, None, None

            upload_outputs = [prepared, faces, others, status, face_index]
            photo.change(on_upload, [photo, face_index], upload_outputs, api_name=False, **FACE_JOBS)
            faces.select(on_select, [photo], upload_outputs, api_name=False, **FACE_JOBS)
            edit_inputs = [prepared, hair, others, strength, keep_detail]
            edit_outputs = [result, before, after, status]
            edit_btn.click(on_edit, edit_inputs, edit_outputs, api_name=False, **FACE_JOBS)
            # .input fires on user interaction only, not when on_upload pre-fills the checkboxes; always_last keeps
            # the newest value of a drag instead of dropping input while an edit is running
            gr.on([hair.input, others.input, strength.input, keep_detail.input], on_edit, edit_inputs, edit_outputs,
                  api_name=False, show_progress="hidden", trigger_mode="always_last", **FACE_JOBS)
            tile_targets = gr.State([])
            grid_btn.click(on_grid, [prepared], [grid, tile_targets], api_name=False, **FACE_JOBS)
            grid.select(on_preview_select, [prepared, tile_targets, strength], [hair, others, result, before, after, status],
                        api_name=False, **FACE_JOBS)
            reset_btn.click(on_reset, [prepared], [hair, others, strength, result, before, after], api_name=False)

        with gr.Tab("Digits & clothing"):
            with gr.Row():
                with gr.Column(scale=1):
                    dataset = gr.Radio([("MNIST digits", "mnist"), ("Fashion-MNIST clothing", "fashion")],
                                       value="mnist", label="Dataset")
                    label = gr.Dropdown([str(i) for i in range(10)], value="0", label="Class")
                    n = gr.Slider(1, 64, value=16, step=1, label="Samples")
                    with gr.Row():
                        seed = gr.Number(value=0, precision=0, label="Seed")
                        dice = gr.Button("Random seed")
                    sample_btn = gr.Button("Sample", variant="primary")
                    all_btn = gr.Button("All classes")
                with gr.Column(scale=2):
                    samples = gr.Gallery(label="Samples", columns=8, height="auto")
                    class_grid = gr.Image(type="pil", label="All classes", format="png")

            def on_dataset(value):
                try:
                    names = sampler(value).classes
                except StarGANAppError:
                    names = []
                return gr.update(choices=names, value=names[0] if names else None)

            dataset.change(on_dataset, [dataset], [label], api_name=False)
            dice.click(lambda: random.randint(0, 2**31 - 1), None, [seed], api_name=False)
            sample_btn.click(sample_api, [dataset, label, n, seed], [samples], api_name=False, **CGAN_JOBS)
            all_btn.click(sample_grid_api, [dataset, seed], [class_grid], api_name=False, **CGAN_JOBS)

        with gr.Tab("About"):
            gr.Markdown(_about())

        # Named HTTP API endpoints (gradio_client): stateless versions of the UI actions.
        with gr.Row(visible=False):
            api_image = gr.File(type="filepath")  # decoded by load_image, so bad files get a clear message
            api_hair, api_attrs = gr.Textbox(value=KEEP), gr.JSON()
            api_strength, api_index = gr.Number(value=1.0), gr.Number(value=0, precision=0)
            api_detail = gr.Checkbox(value=True)
            api_dataset, api_label = gr.Textbox(value="mnist"), gr.Textbox(value="0")
            api_n, api_seed = gr.Number(value=16, precision=0), gr.Number(value=0, precision=0)
            api_faces, api_samples = gr.JSON(), gr.Gallery()
            api_result = gr.Image(type="pil", format="png")
            hidden = gr.Button()
        hidden.click(detect_api, [api_image], [api_faces], api_name="detect", **FACE_JOBS)
        hidden.click(edit_api, [api_image, api_hair, api_attrs, api_strength, api_index, api_detail], [api_result], api_name="edit",
                     **FACE_JOBS)
        hidden.click(preview_api, [api_image, api_index], [api_result], api_name="preview_grid", **FACE_JOBS)
        hidden.click(sample_api, [api_dataset, api_label, api_n, api_seed], [api_samples], api_name="sample", **CGAN_JOBS)
        hidden.click(sample_grid_api, [api_dataset, api_seed], [api_result], api_name="sample_grid", **CGAN_JOBS)
    return demo


def _warm_up() -> None:
    """Build MTCNN and run each network once, so the first visitor does not wait for it."""
    ed, _ = _try_editor()
    if ed is not None:
        ed.detector.detect(Image.new("RGB", (96, 96), (128, 128, 128)))


def launch() -> None:
    configure_threads()
    demo = build()
    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()  # overlaps the server's start-up
    demo.queue(max_size=queue_size(), default_concurrency_limit=CONCURRENCY)
    demo.launch(max_file_size="25mb", show_error=True, server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
