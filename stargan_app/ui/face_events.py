"""Events of the face editor tab. Model work stays in FaceEditor; these turn its results into component updates.

Progress: detection and the Edit button show Gradio's progress overlay; a click on a hair colour or attribute shows
only the small timer; the intensity slider re-edits live with no progress at all, so nothing flashes while dragging.
Errors are Gradio messages (gr.Warning toasts), never text in the page.
"""

from __future__ import annotations

import gradio as gr

from stargan_app.errors import StarGANAppError
from stargan_app.inference import EditResult, FaceEditor, PreparedFace
from stargan_app.inference.face_editor import NO_FACE_MESSAGE
from stargan_app.labels import is_present
from stargan_app.ui.face_layout import FaceTab
from stargan_app.ui.shared import FACE_JOBS, KEEP, edit_targets, other_attributes, present_attributes, result_file

MAX_THUMBNAILS = 12
PRIVATE = {"api_visibility": "private"}  # UI plumbing: not an endpoint for clients, the API page or MCP
# Gradio's scroll_to_output also scrolls when the event starts (to where the result was before it moved) and did not
# bring a phone's result into view in the browser test; this runs in the page after the edit, and only when needed.
SCROLL_TO_RESULT = """() => {
  const el = document.getElementById("before-after");
  const top = el ? el.getBoundingClientRect().top : 0;
  if (el && (top < 0 || top > window.innerHeight / 2)) el.scrollIntoView({behavior: "smooth", block: "start"});
}"""


def wire_face_tab(tab: FaceTab, ed: FaceEditor | None, missing: str) -> None:
    t = tab

    def no_face(message: str | None) -> dict:
        """Everything back to 'no face loaded': controls disabled, result and galleries cleared."""
        if message:
            gr.Warning(message)
        return {
            t.prepared: None,
            t.original: None,
            t.faces: gr.update(value=[], visible=False),
            t.every_face: gr.update(value=False, visible=False, interactive=False),
            **cleared_result(),
            **{c: gr.update(interactive=False) for c in t.controls if c is not t.every_face},
        }

    def cleared_result() -> dict:
        return {
            t.before_after: None,
            t.download: gr.update(value=None, interactive=False),
            t.grid: gr.update(value=[], visible=False),
            t.tile_targets: [],
        }

    def on_upload(image):
        if image is None:
            return no_face(None)
        if ed is None:
            return no_face(missing)
        try:
            found = ed.detect(image)
            if not found:
                return no_face(NO_FACE_MESSAGE)
            prep = ed.prepare(image, 0)
        except StarGANAppError as e:
            return no_face(str(e))
        thumbs = [(im, f"Face {k + 1}") for k, im in enumerate(ed.face_thumbnails(prep.image)[:MAX_THUMBNAILS])]
        group = len(found) > 1
        label = f"{len(found)} faces found: click one to edit it" + (
            f" (the {MAX_THUMBNAILS} largest shown)" if len(found) > MAX_THUMBNAILS else ""
        )
        return {
            t.prepared: prep,
            t.original: result_file(prep.image, "original"),
            t.faces: gr.update(value=thumbs, selected_index=0, visible=group, label=label),
            t.every_face: gr.update(value=False, visible=group, interactive=True),
            t.hair: gr.update(value=KEEP, interactive=True),
            t.others: gr.update(value=present_attributes(ed, prep.attributes), interactive=True),
            **cleared_result(),
            **{c: gr.update(interactive=True) for c in t.controls if c not in (t.every_face, t.hair, t.others)},
        }

    def on_pick_face(image, evt: gr.SelectData):
        """A thumbnail was clicked: prepare only that face (detection is cached) and mark it."""
        if image is None or ed is None:
            return {}
        try:
            prep = ed.prepare(image, int(evt.index))
        except StarGANAppError as e:
            gr.Warning(str(e))
            return {}
        return {
            t.prepared: prep,
            t.faces: gr.update(selected_index=int(evt.index)),
            t.others: gr.update(value=present_attributes(ed, prep.attributes)),
            **cleared_result(),
        }

    def apply(prep: PreparedFace, original: str | None, targets: dict[str, bool], strength: float, detail: bool, every: bool) -> dict:
        try:
            if every:
                r: EditResult = ed.edit_all_faces(prep.image, targets, float(strength), keep_detail=bool(detail))
            else:
                r = ed.edit(prep, targets, strength=float(strength), keep_detail=bool(detail))
        except StarGANAppError as e:
            gr.Warning(str(e))
            return {}
        edited = result_file(r.image)
        return {
            t.before_after: (original or result_file(prep.image, "original"), edited),
            t.download: gr.update(value=edited, interactive=True),
        }

    def on_edit(prep: PreparedFace | None, original, hair, checked, strength, detail, every):
        if prep is None or ed is None:
            gr.Warning("Upload a photo with a face first.")
            return {}
        return apply(prep, original, edit_targets(ed, hair, checked, prep.attributes), strength, detail, every)

    def on_grid(prep: PreparedFace | None):
        if prep is None or ed is None:
            gr.Warning("Upload a photo with a face first.")
            return {}
        previews = ed.edit_previews(prep)
        return {
            t.grid: gr.update(value=[(p.image, p.caption) for p in previews], visible=True),
            t.tile_targets: [p.targets for p in previews],
        }

    def on_tile(prep: PreparedFace | None, original, targets_per_tile, strength, detail, every, evt: gr.SelectData):
        """A gallery tile was clicked: set the controls to that edit (from the face's own attributes) and apply it."""
        if prep is None or ed is None or not targets_per_tile:
            return {}
        targets = targets_per_tile[evt.index]
        hair = next((a for a, on in targets.items() if on and a in ed.schema.exclusive), KEEP)
        checked = [a for a in other_attributes(ed) if targets.get(a, is_present(prep.attributes, a))]
        return {t.hair: hair, t.others: checked, **apply(prep, original, targets, strength, detail, every)}

    def on_reset(prep: PreparedFace | None):
        present = present_attributes(ed, prep.attributes if prep else None) if ed else []
        return {
            t.hair: KEEP,
            t.others: present,
            t.strength: 1.0,
            t.before_after: None,
            t.download: gr.update(value=None, interactive=False),
        }

    upload_outputs = {t.prepared, t.original, t.faces, t.every_face, *t.controls, t.before_after, t.download, t.grid, t.tile_targets}
    t.photo.change(on_upload, [t.photo], upload_outputs, show_progress_on=[t.photo], **PRIVATE, **FACE_JOBS)
    t.faces.select(
        on_pick_face,
        [t.photo],
        {t.prepared, t.faces, t.others, t.before_after, t.download, t.grid, t.tile_targets},
        show_progress_on=[t.faces],
        **PRIVATE,
        **FACE_JOBS,
    )

    edit_inputs = [t.prepared, t.original, t.hair, t.others, t.strength, t.keep_detail, t.every_face]
    result = {t.before_after, t.download}
    # the button's edit (often the first, the slowest) shows progress, then the page scrolls to the result if its top
    # is out of view (on a phone it sits above the controls once it holds an image)
    t.edit_btn.click(on_edit, edit_inputs, result, show_progress_on=[t.before_after], **PRIVATE, **FACE_JOBS).then(
        None, js=SCROLL_TO_RESULT, **PRIVATE
    )
    # .input fires on the user's own changes only, not when on_upload pre-fills the checkboxes; always_last runs the
    # newest value once the running edit is done instead of dropping it
    gr.on(
        [t.hair.input, t.others.input, t.keep_detail.input, t.every_face.input],
        on_edit,
        edit_inputs,
        result,
        show_progress="minimal",
        trigger_mode="always_last",
        **PRIVATE,
        **FACE_JOBS,
    )
    # .input (not .release): the photo follows the slider while it is dragged (a re-edit takes ~20-100 ms);
    # no progress overlay, so nothing flashes over the result
    t.strength.input(on_edit, edit_inputs, result, show_progress="hidden", trigger_mode="always_last", **PRIVATE, **FACE_JOBS)
    t.grid_btn.click(on_grid, [t.prepared], {t.grid, t.tile_targets}, **PRIVATE, **FACE_JOBS)
    t.grid.select(
        on_tile,
        [t.prepared, t.original, t.tile_targets, t.strength, t.keep_detail, t.every_face],
        {t.hair, t.others, *result},
        show_progress_on=[t.before_after],
        **PRIVATE,
        **FACE_JOBS,
    ).then(None, js=SCROLL_TO_RESULT, **PRIVATE)
    t.reset_btn.click(on_reset, [t.prepared], {t.hair, t.others, t.strength, *result}, **PRIVATE)
