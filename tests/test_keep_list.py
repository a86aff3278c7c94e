"""The keep list beside the weights: which attributes the served G edits well enough to keep, and the UI's words for
the others."""

import json
from dataclasses import replace

import pytest
from conftest import TINY_STARGAN, WEIGHTS, FakeDetector, needs_weights, tiny_stargan, tiny_stargan_weights

from stargan_app.checkpoint import DEFAULT_FILES, file_sha256, keep_list_name, load_weights
from stargan_app.errors import WeightsError
from stargan_app.inference import FaceEditor
from stargan_app.inference.keep_list import KeepList, find_keep_list

ATTRIBUTES = TINY_STARGAN.labels.attributes
KEPT = ("Black_Hair", "Mustache")  # the attributes the lists below keep (3 of 5 tiles or more)


def keep_list(sha256: str = "0" * 64) -> KeepList:
    tiles = {a: (4 if a == "Black_Hair" else 3 if a in KEPT else 1) for a in ATTRIBUTES}
    return KeepList(tiles, 5, 3, "2026-12-07", "w.safetensors", sha256)


@pytest.fixture
def weights(tmp_path):
    """A tiny weights file with its keep list beside it."""
    path = tiny_stargan_weights(tmp_path / "w.safetensors")
    keep_list(file_sha256(path)).save(tmp_path / keep_list_name(path.name))
    return path


def test_the_list_round_trips_and_says_which_attributes_are_experimental(weights):
    assert weights.with_name("w.keep.json").is_file()
    loaded = find_keep_list(weights)
    assert loaded == keep_list(file_sha256(weights)) and loaded.kept == KEPT
    assert json.loads(weights.with_name("w.keep.json").read_text())["keep"] == list(KEPT)
    assert loaded.experimental(ATTRIBUTES) == tuple(a for a in ATTRIBUTES if a not in KEPT)
    assert find_keep_list(weights, False) is None


def test_no_list_beside_the_weights_marks_nothing(tmp_path):
    path = tiny_stargan_weights(tmp_path / "w.safetensors")
    assert find_keep_list(path) is None
    assert FaceEditor.from_pretrained(path, person_masks=False).experimental_attributes == ()


GOOD = keep_list().to_json()


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not a readable keep list"),
        (b"\xff\xfe\x00", "not a readable keep list"),
        (json.dumps([1, 2]), "format"),
        (json.dumps({**GOOD, "format": "other/1"}), "format"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "weights_sha256"}), "'weights_sha256'"),
        (json.dumps({**GOOD, "judged": ""}), "'judged'"),
        (json.dumps({**GOOD, "portraits": 0}), "'portraits'"),
        (json.dumps({**GOOD, "min_kept_tiles": 6}), "'min_kept_tiles'"),
        (json.dumps({**GOOD, "kept_tiles": {**GOOD["kept_tiles"], "Bangs": 6}}), "'kept_tiles'"),
        (json.dumps({**GOOD, "kept_tiles": {**GOOD["kept_tiles"], "Bangs": "two"}}), "'kept_tiles'"),
        (json.dumps({**GOOD, "kept_tiles": {**GOOD["kept_tiles"], "Bangs": True}}), "'kept_tiles'"),
        (json.dumps({**GOOD, "kept_tiles": []}), "'kept_tiles'"),
        (json.dumps({**GOOD, "keep": ["Black_Hair"]}), "'keep'"),
    ],
)
def test_a_bad_file_is_refused_with_its_name_and_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "w.keep.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(WeightsError, match=message) as info:
        KeepList.load(path)
    assert "w.keep.json" in str(info.value)


def test_a_list_of_other_attributes_or_other_weights_is_refused(tmp_path, weights):
    with pytest.raises(WeightsError, match="counts"):
        FaceEditor(*tiny_stargan(), keep_list=KeepList({"Bangs": 5}, 5, 3, "2026-12-07", "w", "0" * 64))
    keep_list("f" * 64).save(weights.with_name("w.keep.json"))  # judged on other bytes
    retrained = FaceEditor.from_pretrained(weights, person_masks=False)  # the app still serves it, unmarked
    assert retrained.keep_list is None and retrained.experimental_attributes == ()


def test_the_ui_marks_exactly_the_attributes_not_kept_as_experimental(weights):
    gr = pytest.importorskip("gradio")
    from stargan_app.ui.face_layout import EXPERIMENTAL, build_face_tab

    ed = FaceEditor.from_pretrained(weights, person_masks=False)
    ed.detector = FakeDetector()
    with gr.Blocks():
        tab = build_face_tab(ed, "")
    labels = {value: label for label, value in [*tab.hair.choices, *tab.others.choices]}
    assert set(labels) == {"keep", *ATTRIBUTES}
    for attribute in ATTRIBUTES:
        assert labels[attribute].endswith(EXPERIMENTAL) == (attribute not in KEPT), labels[attribute]
    assert "experimental" in tab.others.info and "2026-12-07" in tab.others.info
    assert tab.hair.info.startswith("experimental")  # Black_Hair is kept, the other colours are not
    colours_kept = {a: 5 if a in TINY_STARGAN.labels.exclusive else 0 for a in ATTRIBUTES}
    with gr.Blocks():
        tab = build_face_tab(FaceEditor(*tiny_stargan(), keep_list=replace(keep_list(), kept_tiles=colours_kept)), "")
    assert tab.hair.info is None and tab.others.info.startswith("experimental")  # words only where they apply


def test_the_ui_marks_nothing_without_a_list_and_names_a_bad_one_in_words(tmp_path, monkeypatch):
    gr = pytest.importorskip("gradio")
    from stargan_app.ui import shared
    from stargan_app.ui.face_layout import build_face_tab

    with gr.Blocks():
        tab = build_face_tab(FaceEditor(*tiny_stargan(), detector=FakeDetector()), "")
    assert not any("experimental" in label for label, _ in [*tab.hair.choices, *tab.others.choices])
    assert tab.others.info is None
    path = tiny_stargan_weights(tmp_path / "w.safetensors")
    path.with_name("w.keep.json").write_text('{"format": "stargan-app-keep-list/1", "keep": ')
    monkeypatch.setattr(shared, "editor", lambda: FaceEditor.from_pretrained(path, person_masks=False))
    ed, missing = shared.try_editor()
    assert ed is None and missing.startswith("The face editor is unavailable: w.keep.json is not a readable keep list")
    assert "Traceback" not in missing


@pytest.mark.shipped_weights
@needs_weights(DEFAULT_FILES["stargan"], keep_list_name(DEFAULT_FILES["stargan"]))
def test_the_shipped_list_belongs_to_the_shipped_weights():
    shipped = WEIGHTS / DEFAULT_FILES["stargan"]
    kept = find_keep_list(shipped)
    assert kept.judged_on(shipped)
    kept.check(load_weights(shipped, kind="stargan").config.labels.attributes)
    assert kept.weights == shipped.name and kept.portraits == 5 and len(kept.kept_tiles) == 9
