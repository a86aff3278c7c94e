"""Named HTTP/MCP endpoints (gradio_client, "Use via API", MCP tools): stateless versions of the UI actions.

Gradio shows each function's docstring as the endpoint's description and reads its `Args:` for the MCP tool
schema; each function is named like its endpoint, since the MCP tool takes the function's name. No
`from __future__ import annotations` here: gr.api reads the return annotation with inspect.signature, which would
see a string.
"""

import functools
import json
from collections.abc import Callable, Sequence

import gradio as gr
from gradio.data_classes import FileData
from PIL import Image

from stargan_app.inference import FaceEditor
from stargan_app.ui.shared import (
    CGAN_JOBS,
    FACE_JOBS,
    KEEP,
    edit_targets,
    friendly,
    other_attributes,
    present_attributes,
    require_editor,
    result_file,
    sampler,
)

SAMPLE_FILES = (
    256  # newest sample tiles kept on disk: several calls' worth, so a reply is never pruned before it is sent
)


@friendly
def detect(image: str | None) -> list[dict]:
    """Find the faces in a photo, largest first.

    Args:
        image: the photo (PNG, JPEG, WebP, ...; at most 25 MB).

    Returns:
        a list of {box: [x0, y0, x1, y1], landmarks: five [x, y] points, score: detector confidence}.
    """
    if image is None:
        raise gr.Error("Please upload an image.")
    return [f.to_dict() for f in require_editor().detect(image)]


EDIT_DOC = """Edit one face of a photo and return the whole photo at its own resolution (PNG up to 1 MP, else JPEG).

    Args:
        image: the photo.
        hair: "keep", or the hair colour to give the face{hair}.
        attributes: the attributes the face should show{attributes}; others are switched off (None: keep the face's).
        strength: how strongly to apply the change, 0 to 2 (1 is the trained strength).
        face_index: which face to edit, 0 for the largest (the order of /detect).
        keep_detail: True (default) adds only the model's change, where the attribute lives; False pastes G's output.
    """


def edit_description(ed: FaceEditor | None) -> str:
    """/edit's docstring, naming the loaded model's own hair colours and attributes (an agent reads them in the
    MCP tool schema, so they must be the ones the weights know)."""
    if ed is None:
        return EDIT_DOC.format(hair="", attributes="")
    others = other_attributes(ed)
    return EDIT_DOC.format(
        hair=f": {_one_of(ed.schema.exclusive)}" if ed.schema.exclusive else "",
        attributes=f", any of {_one_of(others, 'and')} (e.g. {json.dumps(others[:2])})" if others else "",
    )


def _one_of(names: Sequence[str], last: str = "or") -> str:
    """'"A", "B" or "C"'."""
    quoted = [json.dumps(n) for n in names]
    return f" {last} ".join([", ".join(quoted[:-1]), quoted[-1]]) if len(quoted) > 1 else "".join(quoted)


@friendly
def edit(
    image: str | None,
    hair: str = KEEP,
    attributes: list[str] | None = None,
    strength: float = 1.0,
    face_index: int = 0,
    keep_detail: bool = True,
) -> str:
    if image is None:
        raise gr.Error("Please upload an image.")
    ed = require_editor()
    prep = ed.prepare(image, int(face_index))
    checked = attributes if attributes is not None else present_attributes(ed, prep.attributes)
    targets = edit_targets(ed, hair, checked, prep.attributes)
    return result_file(ed.edit(prep, targets, strength=float(strength), keep_detail=bool(keep_detail)).image)


edit.__doc__ = edit_description(None)


@friendly
def preview_grid(image: str | None, face_index: int = 0) -> Image.Image:
    """One image: the aligned face followed by every single-attribute edit of it, in a row.

    Args:
        image: the photo.
        face_index: which face, 0 for the largest (the order of /detect).
    """
    if image is None:
        raise gr.Error("Please upload an image.")
    return require_editor().preview_grid(image, int(face_index))


def sample_images(dataset: str = "mnist", label: str = "0", n: int = 16, seed: int = 0) -> list[Image.Image]:
    """n samples of one class, upscaled 4x for display."""
    images = sampler(dataset).sample(label, n=int(n), seed=int(seed))
    return [im.resize((112, 112), Image.NEAREST) for im in images]


def class_grid_image(dataset: str = "mnist", seed: int = 0) -> Image.Image:
    """A grid with a row of 8 samples per class, upscaled 3x."""
    grid = sampler(dataset).grid(n_per_class=8, seed=int(seed))
    return grid.resize((grid.width * 3, grid.height * 3), Image.NEAREST)


@friendly
def sample(dataset: str = "mnist", label: str = "0", n: int = 16, seed: int = 0) -> list[dict]:
    """Draw samples of one class from a conditional GAN.

    Args:
        dataset: "mnist" (digits) or "fashion" (Fashion-MNIST clothing).
        label: the class: "0" to "9" for digits, a class name such as "Sneaker" for clothing.
        n: how many samples, 1 to 64.
        seed: random seed; the same seed gives the same samples.

    Returns:
        a list of {image: path of a 112x112 PNG, caption: None}, like a gr.Gallery.
    """
    return [
        {"image": FileData(path=result_file(im, "sample", SAMPLE_FILES)).model_dump(), "caption": None}
        for im in sample_images(dataset, label, n, seed)
    ]


@friendly
def sample_grid(dataset: str = "mnist", seed: int = 0) -> FileData:
    """One image with a row of 8 samples for every class of a conditional GAN.

    Args:
        dataset: "mnist" (digits) or "fashion" (Fashion-MNIST clothing).
        seed: random seed; the same seed gives the same grid.
    """
    return FileData(path=result_file(class_grid_image(dataset, seed), "grid", 16))


def with_description(fn: Callable, doc: str) -> Callable:
    """fn under its own name and signature, with another docstring (what Gradio and MCP describe it by)."""

    @functools.wraps(fn)
    def endpoint(*args, **kwargs):
        return fn(*args, **kwargs)

    endpoint.__doc__ = doc
    return endpoint


def register(ed: FaceEditor | None) -> None:
    """Add the named endpoints to the Blocks being built (call inside `with gr.Blocks()`); /edit's description names
    the attributes of `ed`, the editor the app serves."""
    with gr.Row(visible=False):
        api_image = gr.File(type="filepath", label="image")  # decoded by load_image, so bad files get a clear message
        # choices, not free text or JSON (whose schema MCP clients refuse): the API page and the MCP tool schema list
        # the names the model knows; another name still reaches edit(), whose error lists the known ones
        choices = {"allow_custom_value": True}
        api_hair = gr.Dropdown([KEEP, *(ed.schema.exclusive if ed else ())], value=KEEP, label="hair", **choices)
        api_attrs = gr.Dropdown(
            other_attributes(ed) if ed else [], value=None, multiselect=True, label="attributes", **choices
        )
        api_strength = gr.Number(value=1.0, label="strength")
        api_index = gr.Number(value=0, precision=0, label="face_index")
        api_detail = gr.Checkbox(value=True, label="keep_detail")
        api_faces = gr.JSON(label="faces")
        api_result = gr.Image(type="pil", format="png", label="image")
        hidden = gr.Button()
    hidden.click(detect, [api_image], [api_faces], api_name="detect", **FACE_JOBS)
    hidden.click(
        with_description(edit, edit_description(ed)),
        [api_image, api_hair, api_attrs, api_strength, api_index, api_detail],
        [api_result],
        api_name="edit",
        **FACE_JOBS,
    )
    hidden.click(preview_grid, [api_image, api_index], [api_result], api_name="preview_grid", **FACE_JOBS)
    # no files in, so no components needed: gr.api types the endpoint from the signature
    gr.api(sample, api_name="sample", **CGAN_JOBS)
    gr.api(sample_grid, api_name="sample_grid", **CGAN_JOBS)
