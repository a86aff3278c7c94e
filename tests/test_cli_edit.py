"""`stargan-app edit` on the tiny random-weight model, real MTCNN and the portraits in assets/ (alone and composed
side by side): batches with bad files, --json lines, attribute names, --overwrite and --face; and `sheet`."""

import json

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_STARGAN, tiny_stargan_weights
from PIL import Image

from stargan_app.cli import main
from stargan_app.errors import LabelError
from stargan_app.inference.compositing import RegionMaps
from stargan_app.labels import choice_targets

pytest.importorskip("facenet_pytorch")

ASTRONAUT = ROOT / "assets" / "astronaut.png"
GRACE_HOPPER = ROOT / "assets" / "grace_hopper.png"
SCHEMA = TINY_STARGAN.labels


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_stargan_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A photo with two faces (the astronaut left, Grace Hopper right: hers is larger, so she is face 0), a file
    that is not an image and a photo without a face."""
    folder = tmp_path_factory.mktemp("photos")
    left, right = Image.open(ASTRONAUT).convert("RGB"), Image.open(GRACE_HOPPER).convert("RGB")
    pair = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width, 0))
    pair.save(folder / "pair.png")
    (folder / "notes.jpg").write_text("not a photo")
    Image.new("RGB", (320, 240), (90, 120, 160)).save(folder / "sky.png")
    return {"pair": folder / "pair.png", "not_an_image": folder / "notes.jpg", "no_face": folder / "sky.png"}


def edit(weights, *args) -> int:
    return main(["edit", "--weights", str(weights), *map(str, args)])


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.int16)


def test_a_batch_goes_on_past_bad_files_names_them_and_exits_non_zero(weights, photos, tmp_path, capsys):
    batch = [photos["not_an_image"], ASTRONAUT, photos["no_face"]]
    assert edit(weights, *batch, "--hair", "blond", "--out", tmp_path) == 1
    err = capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["astronaut.png"]
    assert "notes.jpg: Could not read this file as an image" in err
    assert "sky.png: No face was found" in err
    assert "2 of 3 photo(s) not edited" in err and "Traceback" not in err
    assert np.abs(pixels(tmp_path / "astronaut.png") - pixels(ASTRONAUT)).max() > 0


def test_json_prints_a_line_per_photo_with_its_faces_attributes_and_output(weights, photos, tmp_path, capsys):
    assert edit(weights, photos["pair"], photos["no_face"], "--set", "Glasses", "--out", tmp_path, "--json") == 1
    pair, sky = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert pair["input"] == str(photos["pair"]) and pair["output"] == str(tmp_path / "pair.png") and not pair["error"]
    assert [f["index"] for f in pair["faces"]] == [0, 1] and all(f["edited"] for f in pair["faces"])
    assert all(set(f["attributes_before"]) == set(SCHEMA.attributes) for f in pair["faces"])
    assert pair["faces"][0]["box"][0] > Image.open(ASTRONAUT).width  # face 0 is the larger one, on the right
    assert sky["output"] is None and sky["faces"] == [] and "No face" in sky["error"]


def test_face_n_edits_only_that_face(weights, photos, tmp_path):
    assert edit(weights, photos["pair"], "--hair", "black", "--face", "1", "--out", tmp_path) == 0
    change = np.abs(pixels(tmp_path / "pair.png") - pixels(photos["pair"])).sum(axis=2)
    split = Image.open(ASTRONAUT).width
    assert change[:, :split].max() > 0 and change[:, split:].max() == 0  # face 1 is the astronaut, on the left


def test_a_face_number_past_the_last_face_is_reported_clearly(weights, tmp_path, capsys):
    assert edit(weights, ASTRONAUT, "--hair", "black", "--face", "3", "--out", tmp_path) == 1
    assert "astronaut.png: Face 3 was asked for, but the image has 1 face(s)." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        edit(weights, ASTRONAUT, "--hair", "black", "--face", "-1")
    assert "expected a face number from 0" in capsys.readouterr().err


def test_an_existing_output_is_replaced_only_with_overwrite(weights, tmp_path, capsys):
    mine = tmp_path / "astronaut.png"
    mine.write_bytes(b"someone else's file")
    assert edit(weights, ASTRONAUT, "--set", "Hat", "--out", tmp_path) == 1
    assert mine.read_bytes() == b"someone else's file"
    assert "already exists; not overwritten (pass --overwrite" in capsys.readouterr().err
    assert edit(weights, ASTRONAUT, "--set", "Hat", "--out", tmp_path, "--overwrite") == 0
    assert Image.open(mine).size == Image.open(ASTRONAUT).size


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "Sunglasses"], "Unknown attribute 'Sunglasses'. Valid attributes: Bangs, Black_Hair (Black hair)"),
        (["--unset", "hats"], "Wearing_Hat (Hat), Mustache, Eyeglasses (Glasses)."),
        (["--hair", "pink"], "Unknown hair colour 'pink'. Valid hair colours: black, blond, brown, gray."),
        (["--strength", "3", "--set", "Hat"], "Strength must be a number between 0 and 2"),
        ([], "Nothing to edit: give --hair, --set or --unset"),
        (["--set", "Hat", "--out", "README.md"], "--out README.md is a file; give a folder"),
    ],
)
def test_bad_edit_options_exit_2_with_the_valid_choices_and_write_nothing(
    weights, tmp_path, capsys, monkeypatch, args, message
):
    monkeypatch.chdir(ROOT)  # a later --out wins: README.md is a file there
    assert edit(weights, ASTRONAUT, "--out", tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_attributes_are_named_as_the_schema_or_the_app_names_them():
    assert choice_targets(SCHEMA, "blond", ["glasses", "Wearing_Earrings"], ["Hat"]) == {
        "Blond_Hair": True,
        "Eyeglasses": True,
        "Wearing_Earrings": True,
        "Wearing_Hat": False,
    }
    assert choice_targets(SCHEMA, "Black hair") == choice_targets(SCHEMA, "BLACK_HAIR") == {"Black_Hair": True}


@pytest.mark.parametrize(
    "hair, on, off, message",
    [
        ("blond", ["Black_Hair"], [], "at most one hair colour"),
        (None, ["Glasses"], ["Eyeglasses"], "both switched on and off"),
    ],
)
def test_contradictory_choices_are_refused(hair, on, off, message):
    with pytest.raises(LabelError, match=message):
        choice_targets(SCHEMA, hair, on, off)


def test_sheet_has_a_row_per_portrait_and_a_column_per_attribute(weights, tmp_path):
    out = tmp_path / "sheet.png"
    assert main(["sheet", "--weights", str(weights), "--out", str(out), "--tile", "32"]) == 0
    caption = 24  # write_sheet's caption band above the tiles and under each row
    columns, rows = 1 + len(SCHEMA.attributes), 2  # the input and every edit; the two portraits in assets/
    assert Image.open(out).size == (32 * columns, caption + (32 + caption) * rows)


def test_sheet_regions_option_gates_a_candidate_as_served(weights, tmp_path):
    """A run's candidate has no maps beside it: --regions gives it the shipped ones (here maps that allow nothing, so
    every tile is the input's), and 'off' shows the ungated edits."""
    size = TINY_STARGAN.image_size
    nowhere = RegionMaps({a: torch.zeros(size, size) for a in SCHEMA.attributes}).save(tmp_path / "maps.safetensors")
    tiles = {}
    for name, regions in (("gated", str(nowhere)), ("off", "off")):
        out = tmp_path / f"{name}.png"
        assert main(["sheet", "--weights", str(weights), "--out", str(out), "--tile", "32", "--regions", regions]) == 0
        row = np.asarray(Image.open(out).convert("RGB"), np.int16)[24 : 24 + 32]
        tiles[name] = [row[:, 32 * k : 32 * (k + 1)] for k in range(1 + len(SCHEMA.attributes))]
    assert all(np.abs(t - tiles["gated"][0]).max() <= 1 for t in tiles["gated"][1:])
    assert any(np.abs(t - tiles["off"][0]).max() > 8 for t in tiles["off"][1:])
