"""Layout of the face editor tab: the components, in the order a person uses them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr

from stargan_app.inference import FaceEditor
from stargan_app.labels import display_name
from stargan_app.ui.shared import ASSETS, KEEP, other_attributes

EXPERIMENTAL = " (experimental)"  # after the name of an attribute the served G's keep list does not keep

# On a narrow screen the two columns stack. Until there is a result the result column is hidden there (an empty
# slider would push the examples off screen), so the photo and the controls come first; once the before/after
# slider holds an image, the result column moves to the top (the Edit button and a gallery tile also scroll to
# it), with the intensity slider right under the result, so dragging it shows the change.
CSS = """
@media (max-width: 720px) {
  #result-col:not(:has(#before-after img)) { display: none; }
  #result-col:has(#before-after img) { order: -1; }
}
"""


@dataclass
class FaceTab:
    photo: gr.Image
    faces: gr.Gallery
    every_face: gr.Checkbox
    hair: gr.Radio
    others: gr.CheckboxGroup
    edit_btn: gr.Button
    grid_btn: gr.Button
    reset_btn: gr.Button
    before_after: gr.ImageSlider
    strength: gr.Slider
    download: gr.DownloadButton
    grid: gr.Gallery
    prepared: gr.State  # PreparedFace of the chosen face, or None
    original: gr.State  # path of the upright photo as encoded for the slider's "before" side
    tile_targets: gr.State  # targets of each edit-gallery tile


# The FaceTab fields that only make sense once a face is prepared: disabled until then.
CONTROLS = ("every_face", "hair", "others", "edit_btn", "grid_btn", "reset_btn", "strength")


def build_face_tab(ed: FaceEditor | None, missing: str) -> FaceTab:
    if ed is None:
        gr.Markdown(f"**{missing}**")
    with gr.Row(elem_id="editor-row"):
        with gr.Column(elem_id="controls-col"):
            controls = _controls(ed)
        with gr.Column(elem_id="result-col"):
            results = _results()
    examples = sorted(ASSETS.glob("*.png"))
    if examples:
        gr.Examples(
            [str(p) for p in examples],
            inputs=controls["photo"],
            label="Or try an example",
            example_labels=[p.stem.replace("_", " ").title() for p in examples],
            cache_examples=False,
        )
    return FaceTab(**controls, **results, prepared=gr.State(None), original=gr.State(None), tile_targets=gr.State([]))


def _controls(ed: FaceEditor | None) -> dict[str, gr.components.Component]:
    """The left column: the photo, its faces, the attribute choices and the buttons (disabled until a face)."""
    off = {"interactive": False}
    photo = gr.Image(type="pil", label="Photo", sources=["upload", "webcam", "clipboard"])
    # fit_columns=False: thumbnails stay thumbnails, not zoomed full-width squares
    faces = gr.Gallery(
        label="Faces found: click one to edit it",
        columns=6,
        height=150,
        object_fit="contain",
        allow_preview=False,
        fit_columns=False,
        visible=False,
        buttons=[],
        elem_id="faces",
    )
    every_face = gr.Checkbox(
        False, label="Edit every face", info="Apply the same changes to every face in the photo", visible=False, **off
    )
    colours, attributes = (ed.schema.exclusive, other_attributes(ed)) if ed else ((), [])
    hair_choices = [("Keep", KEEP)] + attribute_choices(ed, colours) if ed else [KEEP]
    hair = gr.Radio(hair_choices, value=KEEP, label="Hair colour", info=experimental_info(ed, colours), **off)
    others = gr.CheckboxGroup(
        attribute_choices(ed, attributes) if ed else [],
        label="Attributes",
        info=experimental_info(ed, attributes),
        **off,
    )
    with gr.Row():
        edit_btn = gr.Button("Edit", variant="primary", **off)
        grid_btn = gr.Button("Show every single edit", **off)
        reset_btn = gr.Button("Reset", **off)
    return dict(
        photo=photo,
        faces=faces,
        every_face=every_face,
        hair=hair,
        others=others,
        edit_btn=edit_btn,
        grid_btn=grid_btn,
        reset_btn=reset_btn,
    )


def attribute_choices(ed: FaceEditor, attributes: Sequence[str]) -> list[tuple[str, str]]:
    """(label, attribute) per choice; an attribute the served G does not yet edit well says so in its label."""
    experimental = set(ed.experimental_attributes)
    return [(display_name(a) + (EXPERIMENTAL if a in experimental else ""), a) for a in attributes]


def experimental_info(ed: FaceEditor | None, attributes: Sequence[str]) -> str | None:
    """The words under a choice group that say what "experimental" means, when some of its attributes are."""
    if ed is None or not set(attributes) & set(ed.experimental_attributes):
        return None
    return (
        "experimental: this model does not edit it well yet (counted on its portrait sheet, "
        f"{ed.keep_list.judged}); try it, but expect smudges"
    )


def _results() -> dict[str, gr.components.Component]:
    """The right column: the before/after slider, the intensity, the download and the gallery of single edits."""
    off = {"interactive": False}
    before_after = gr.ImageSlider(
        label="Before / after (drag the handle)",
        type="filepath",
        interactive=False,
        buttons=["fullscreen"],
        elem_id="before-after",
    )
    strength = gr.Slider(0, 2, value=1, step=0.1, label="Intensity", elem_id="intensity", **off)
    download = gr.DownloadButton("Download edited photo", elem_id="download", **off)
    # shown by "Show every single edit": an empty gallery would only push the photo down on a phone
    grid = gr.Gallery(
        label="Every single edit: click one to apply it",
        columns=3,
        height="auto",
        object_fit="contain",
        allow_preview=False,
        fit_columns=False,
        buttons=[],
        visible=False,
        elem_id="edit-gallery",
    )
    return dict(before_after=before_after, strength=strength, download=download, grid=grid)
