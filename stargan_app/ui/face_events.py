"""Events of the face editor tab. Model work stays in FaceEditor; these turn its results into component updates.

Each handler is a method of FaceEvents that returns {component: update}; `@updates(...)` above it names the FaceTab
fields it may update, and wire_face_tab makes exactly those the event's outputs. So a handler can be called, and
tested, without a browser: tests/test_face_handlers.py does. Handlers are named on_*: Gradio names even a private
event after its function, and a handler called `edit` would push the /edit endpoint to /edit_3.

Progress: detection and the Edit button show Gradio's progress overlay; a click on a hair colour or attribute shows
only the small timer; the intensity slider re-edits live with no progress at all, so nothing flashes while dragging.
Errors are Gradio messages (gr.Warning toasts), never text in the page; what an edit tells the person
(EditResult.message: no hair shows, or the hair already has the colour asked for) is a gr.Info toast. The hair-colour
radio starts at the colour the face's hair reads as from its own pixels (choosing it again keeps the hair as it is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from stargan_app.errors import StarGANAppError
from stargan_app.inference import EditResult, FaceEditor, PreparedFace
from stargan_app.inference.face_editor import NO_FACE_MESSAGE
from stargan_app.labels import is_present
from stargan_app.ui.face_layout import CONTROLS, FaceTab
from stargan_app.ui.shared import (
    FACE_JOBS,
    edit_targets,
    other_attributes,
    present_attributes,
    read_hair_colour,
    result_file,
)

MAX_THUMBNAILS = 12
NO_PHOTO_MESSAGE = "Upload a photo with a face first."
PRIVATE = {"api_visibility": "private"}  # UI plumbing: not an endpoint for clients, the API page or MCP
# Gradio's scroll_to_output also scrolls when the event starts (to where the result was before it moved) and did not
# bring a phone's result into view in the browser test; this runs in the page after the edit, and only when needed.
SCROLL_TO_RESULT = """() => {
  const el = document.getElementById("before-after");
  const top = el ? el.getBoundingClientRect().top : 0;
  if (el && (top < 0 || top > window.innerHeight / 2)) el.scrollIntoView({behavior: "smooth", block: "start"});
}"""
RESULT = ("before_after", "download")  # the edited photo: the before/after slider and its download
CLEARED = (*RESULT, "grid", "tile_targets")  # what a new photo or face makes stale

Updates = dict[Any, Any]  # {component: value or gr.update(...)}


def updates(*fields: str) -> Callable[[Callable], Callable]:
    """Declares the FaceTab fields a handler may return updates for: its event's outputs."""

    def declare(handler: Callable) -> Callable:
        handler.outputs = fields
        return handler

    return declare


@dataclass
class FaceEvents:
    """The face tab's handlers, bound to its components and the editor (None: the weights are missing)."""

    tab: FaceTab
    ed: FaceEditor | None
    missing: str = ""  # why ed is None, told to whoever uploads a photo

    def outputs(self, handler: Callable) -> list[gr.components.Component]:
        return [getattr(self.tab, name) for name in handler.outputs]

    @updates("prepared", "original", "faces", *CONTROLS, *CLEARED)
    def on_upload(self, image: Image.Image | None) -> Updates:
        """A new photo: detect its faces, prepare the largest, fill the controls with its attributes."""
        if image is None:
            return self._no_face(None)
        if self.ed is None:
            return self._no_face(self.missing)
        try:
            found = self.ed.detect(image)
            if not found:
                return self._no_face(NO_FACE_MESSAGE)
            prep = self.ed.prepare(image, 0)
        except StarGANAppError as e:
            return self._no_face(str(e))
        t = self.tab
        thumbs = [(im, f"Face {k + 1}") for k, im in enumerate(self.ed.face_thumbnails(prep.image)[:MAX_THUMBNAILS])]
        group = len(found) > 1
        label = f"{len(found)} faces found: click one to edit it" + (
            f" (the {MAX_THUMBNAILS} largest shown)" if len(found) > MAX_THUMBNAILS else ""
        )
        return {
            **self._controls(interactive=True),
            t.prepared: prep,
            t.original: result_file(prep.image, "original"),
            t.faces: gr.update(value=thumbs, selected_index=0, visible=group, label=label),
            t.every_face: gr.update(value=False, visible=group, interactive=True),
            t.hair: gr.update(value=read_hair_colour(prep), interactive=True),
            t.others: gr.update(value=present_attributes(self.ed, prep.attributes), interactive=True),
            **self._cleared(),
        }

    @updates("prepared", "faces", "hair", "others", *CLEARED)
    def on_pick_face(self, image: Image.Image | None, evt: gr.SelectData) -> Updates:
        """A thumbnail was clicked: prepare only that face (detection is cached) and mark it."""
        if image is None or self.ed is None:
            return {}
        try:
            prep = self.ed.prepare(image, int(evt.index))
        except StarGANAppError as e:
            gr.Warning(str(e))
            return {}
        t = self.tab
        return {
            t.prepared: prep,
            t.faces: gr.update(selected_index=int(evt.index)),
            t.hair: gr.update(value=read_hair_colour(prep)),
            t.others: gr.update(value=present_attributes(self.ed, prep.attributes)),
            **self._cleared(),
        }

    @updates(*RESULT)
    def on_edit(
        self,
        prep: PreparedFace | None,
        original: str | None,
        hair: str,
        checked: list[str] | None,
        strength: float,
        every: bool,
    ) -> Updates:
        """Apply the controls' choices: only what differs from the face's own attributes becomes a target."""
        if prep is None or self.ed is None:
            gr.Warning(NO_PHOTO_MESSAGE)
            return {}
        return self._apply(prep, original, edit_targets(self.ed, hair, checked, prep.attributes), strength, every)

    @updates("grid", "tile_targets")
    def on_grid(self, prep: PreparedFace | None) -> Updates:
        """Every single-attribute edit of the face, captioned, in the edit gallery."""
        if prep is None or self.ed is None:
            gr.Warning(NO_PHOTO_MESSAGE)
            return {}
        previews = self.ed.edit_previews(prep)
        return {
            self.tab.grid: gr.update(value=[(p.image, p.caption) for p in previews], visible=True),
            self.tab.tile_targets: [p.targets for p in previews],
        }

    @updates("hair", "others", *RESULT)
    def on_tile(
        self,
        prep: PreparedFace | None,
        original: str | None,
        targets_per_tile: list[dict[str, bool]],
        strength: float,
        every: bool,
        evt: gr.SelectData,
    ) -> Updates:
        """A gallery tile was clicked: set the controls to that edit (from the face's own attributes) and apply it."""
        if prep is None or self.ed is None or not targets_per_tile:
            return {}
        targets = targets_per_tile[evt.index]
        hair = next((a for a, on in targets.items() if on and a in self.ed.schema.exclusive), read_hair_colour(prep))
        checked = [a for a in other_attributes(self.ed) if targets.get(a, is_present(prep.attributes, a))]
        return {self.tab.hair: hair, self.tab.others: checked, **self._apply(prep, original, targets, strength, every)}

    @updates("hair", "others", "strength", *RESULT)
    def on_reset(self, prep: PreparedFace | None) -> Updates:
        """The controls back to the face as it is, no result."""
        t = self.tab
        return {
            t.hair: read_hair_colour(prep),
            t.others: present_attributes(self.ed, prep.attributes if prep else None) if self.ed else [],
            t.strength: 1.0,
            t.before_after: None,
            t.download: gr.update(value=None, interactive=False),
        }

    def _apply(
        self, prep: PreparedFace, original: str | None, targets: dict[str, bool], strength: float, every: bool
    ) -> Updates:
        try:
            if every:
                r: EditResult = self.ed.edit_all_faces(prep.image, targets, float(strength))
            else:
                r = self.ed.edit(prep, targets, strength=float(strength))
        except StarGANAppError as e:
            gr.Warning(str(e))
            return {}
        if r.message:  # no hair shows, or the hair already has the colour asked for
            gr.Info(r.message)
        edited = result_file(r.image)
        return {
            self.tab.before_after: (original or result_file(prep.image, "original"), edited),
            self.tab.download: gr.update(value=edited, interactive=True),
        }

    def _no_face(self, message: str | None) -> Updates:
        """Everything back to 'no face loaded': controls disabled, result and galleries cleared."""
        if message:
            gr.Warning(message)
        t = self.tab
        return {
            **self._controls(interactive=False),
            t.prepared: None,
            t.original: None,
            t.faces: gr.update(value=[], visible=False),
            t.every_face: gr.update(value=False, visible=False, interactive=False),
            **self._cleared(),
        }

    def _controls(self, interactive: bool) -> Updates:
        return {getattr(self.tab, name): gr.update(interactive=interactive) for name in CONTROLS}

    def _cleared(self) -> Updates:
        t = self.tab
        return {
            t.before_after: None,
            t.download: gr.update(value=None, interactive=False),
            t.grid: gr.update(value=[], visible=False),
            t.tile_targets: [],
        }


def wire_face_tab(tab: FaceTab, ed: FaceEditor | None, missing: str) -> FaceEvents:
    """Bind the tab's events to FaceEvents' handlers, each with the outputs it declares."""
    t, ev = tab, FaceEvents(tab, ed, missing)
    t.photo.change(
        ev.on_upload, [t.photo], ev.outputs(ev.on_upload), show_progress_on=[t.photo], **PRIVATE, **FACE_JOBS
    )
    t.faces.select(
        ev.on_pick_face, [t.photo], ev.outputs(ev.on_pick_face), show_progress_on=[t.faces], **PRIVATE, **FACE_JOBS
    )

    edit_inputs = [t.prepared, t.original, t.hair, t.others, t.strength, t.every_face]
    result = ev.outputs(ev.on_edit)
    # the button's edit (often the first, the slowest) shows progress, then the page scrolls to the result if its top
    # is out of view (on a phone it sits above the controls once it holds an image)
    t.edit_btn.click(ev.on_edit, edit_inputs, result, show_progress_on=[t.before_after], **PRIVATE, **FACE_JOBS).then(
        None, js=SCROLL_TO_RESULT, **PRIVATE
    )
    # .input fires on the user's own changes only, not when upload pre-fills the checkboxes; always_last runs the
    # newest value once the running edit is done instead of dropping it
    gr.on(
        [t.hair.input, t.others.input, t.every_face.input],
        ev.on_edit,
        edit_inputs,
        result,
        show_progress="minimal",
        trigger_mode="always_last",
        **PRIVATE,
        **FACE_JOBS,
    )
    # .input (not .release): the photo follows the slider while it is dragged (a re-edit takes ~20-100 ms);
    # no progress overlay, so nothing flashes over the result
    t.strength.input(
        ev.on_edit, edit_inputs, result, show_progress="hidden", trigger_mode="always_last", **PRIVATE, **FACE_JOBS
    )
    t.grid_btn.click(ev.on_grid, [t.prepared], ev.outputs(ev.on_grid), **PRIVATE, **FACE_JOBS)
    t.grid.select(
        ev.on_tile,
        [t.prepared, t.original, t.tile_targets, t.strength, t.every_face],
        ev.outputs(ev.on_tile),
        show_progress_on=[t.before_after],
        **PRIVATE,
        **FACE_JOBS,
    ).then(None, js=SCROLL_TO_RESULT, **PRIVATE)
    t.reset_btn.click(ev.on_reset, [t.prepared], ev.outputs(ev.on_reset), **PRIVATE)
    return ev
