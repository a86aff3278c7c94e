"""The face tab's handlers called directly, without a browser or a server: a tiny random StarGAN, two fake faces."""

import numpy as np
import pytest
from conftest import TINY_STARGAN, FakeDetector, tiny_stargan
from PIL import Image

gr = pytest.importorskip("gradio")

from stargan_app.inference import FaceEditor  # noqa: E402
from stargan_app.ui.face_events import NO_PHOTO_MESSAGE, FaceEvents, wire_face_tab  # noqa: E402
from stargan_app.ui.face_layout import CONTROLS, build_face_tab  # noqa: E402
from stargan_app.ui.shared import KEEP  # noqa: E402

HANDLERS = ("on_upload", "on_pick_face", "on_edit", "on_grid", "on_tile", "on_reset")
FIRST_X = 100  # left edge of FakeDetector's first face


@pytest.fixture(scope="module")
def events() -> FaceEvents:
    ed = FaceEditor(*tiny_stargan(), detector=FakeDetector(count=2))
    with gr.Blocks():
        return wire_face_tab(build_face_tab(ed, ""), ed, "")


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def uploaded(events, photo) -> dict:
    return events.on_upload(photo)


def value(update):
    return update["value"] if isinstance(update, dict) else update


def select(index: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": index, "value": None})


def check_declared(events: FaceEvents, handler, out: dict) -> dict:
    """A handler may only update what it declares, which is what its event lists as outputs."""
    assert set(out) <= set(events.outputs(handler)), handler.__name__
    return out


def test_each_handler_declares_its_outputs_by_field_name(events):
    fields = set(vars(events.tab))
    for name in HANDLERS:
        declared = getattr(events, name).outputs
        assert declared and set(declared) <= fields, name


def test_upload_of_a_group_photo_prepares_the_largest_face_and_enables_the_controls(events, uploaded):
    t = events.tab
    check_declared(events, events.on_upload, uploaded)
    assert uploaded[t.prepared].face.box[0] == FIRST_X  # FakeDetector's faces are the same size: the first is "largest"
    faces = uploaded[t.faces]
    assert faces["visible"] and faces["selected_index"] == 0 and faces["label"].startswith("2 faces found")
    assert [caption for _, caption in faces["value"]] == ["Face 1", "Face 2"]
    assert all(uploaded[getattr(t, name)]["interactive"] for name in CONTROLS)
    assert value(uploaded[t.hair]) == KEEP and value(uploaded[t.before_after]) is None
    assert set(value(uploaded[t.others])) <= set(TINY_STARGAN.labels.attributes)


def test_no_photo_and_no_model_disable_everything(photo):
    with gr.Blocks():
        tab = build_face_tab(None, "no weights")
    events = FaceEvents(tab, None, "The face editor is unavailable: no weights")
    removed = check_declared(events, events.on_upload, events.on_upload(None))  # the photo was cleared: no message
    with pytest.warns(UserWarning, match="unavailable"):
        refused = check_declared(events, events.on_upload, events.on_upload(photo))
    for out in (removed, refused):
        assert out[tab.prepared] is None and not any(out[getattr(tab, name)]["interactive"] for name in CONTROLS)


def test_picking_the_second_face_clears_the_last_result(events, photo):
    out = check_declared(events, events.on_pick_face, events.on_pick_face(photo, select(1)))
    t = events.tab
    assert out[t.prepared].face.box[0] > FIRST_X and out[t.faces]["selected_index"] == 1
    assert out[t.before_after] is None and out[t.tile_targets] == []


def test_edit_returns_before_and_after_at_the_photos_size(events, uploaded, photo):
    t = events.tab
    prep, original = uploaded[t.prepared], uploaded[t.original]
    out = check_declared(events, events.on_edit, events.on_edit(prep, original, "Blond_Hair", [], 1.0, False))
    before, after = out[t.before_after]
    assert before == original and out[t.download]["value"] == after and out[t.download]["interactive"]
    assert Image.open(after).size == photo.size
    every = events.on_edit(prep, original, "Blond_Hair", [], 1.0, True)[t.before_after][1]
    assert every != after  # the second face edited too


def test_edit_before_a_photo_warns_and_changes_nothing(events):
    with pytest.warns(UserWarning, match=NO_PHOTO_MESSAGE):
        assert events.on_edit(None, None, KEEP, [], 1.0, False) == {}


def test_a_gallery_tile_sets_the_controls_to_its_edit_and_applies_it(events, uploaded):
    t = events.tab
    prep, original = uploaded[t.prepared], uploaded[t.original]
    grid = check_declared(events, events.on_grid, events.on_grid(prep))
    tiles = grid[t.tile_targets]
    assert len(grid[t.grid]["value"]) == len(tiles) > 1 and grid[t.grid]["visible"]
    gray = next(k for k, targets in enumerate(tiles) if targets.get("Gray_Hair"))
    out = check_declared(events, events.on_tile, events.on_tile(prep, original, tiles, 1.0, False, select(gray)))
    assert out[t.hair] == "Gray_Hair" and out[t.before_after][0] == original


def test_reset_puts_back_the_faces_own_attributes(events, uploaded):
    t = events.tab
    out = check_declared(events, events.on_reset, events.on_reset(uploaded[t.prepared]))
    assert out[t.hair] == KEEP and out[t.strength] == 1.0 and out[t.before_after] is None
    assert out[t.others] == value(uploaded[t.others])
