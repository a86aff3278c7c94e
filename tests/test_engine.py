"""Fast engine tests: tiny random-weight models, synthetic inputs, CPU."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_STARGAN, FakeDetector, tiny_stargan, tiny_stargan_weights
from PIL import Image

from stargan_app.checkpoint import load_weights, save_weights
from stargan_app.config import CGANConfig, LabelSchema
from stargan_app.errors import LabelError, NoFaceError, WeightsError
from stargan_app.imaging import elliptical_window, gaussian_blur
from stargan_app.inference import ClassSampler, FaceEditor
from stargan_app.labels import edit_passes, single_attribute_edits
from stargan_app.models import CGANGenerator, Discriminator, Generator
from stargan_app.official import import_official

REFERENCE = (
    Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "official_stargan_state_dict_layout.json"
)


def test_shapes_and_label_layout():
    assert TINY_STARGAN.labels.c_dim == 11 and TINY_STARGAN.labels.cls_dim == 9
    G, D = Generator(TINY_STARGAN), Discriminator(TINY_STARGAN)
    x = torch.randn(2, 3, 32, 32)
    assert G(x, torch.zeros(2, 11)).shape == x.shape
    src, cls = D(x)
    assert src.shape == (2, 1, 2, 2) and cls.shape == (2, 9)


def test_eval_mode_uses_instance_statistics():
    G = Generator(dataclasses.replace(TINY_STARGAN, track_running_stats=True))
    for m in G.modules():
        if hasattr(m, "running_mean") and m.running_mean is not None:
            m.running_mean.fill_(5.0)  # garbage running stats must not matter
    x, c = torch.randn(1, 3, 32, 32), torch.zeros(1, 11)
    with torch.no_grad():
        assert torch.equal(G.train()(x, c), G.eval()(x, c))


SOURCE = {"Black_Hair": 0.9, "Bangs": 0.8, "Eyeglasses": 0.1}


def test_edit_pass_sets_one_hair_colour_and_keeps_the_untouched_source_labels():
    schema = LabelSchema()
    (c,) = edit_passes(schema, {"Blond_Hair": True}, SOURCE, strength=1.0)
    a = dict(zip(schema.attributes, c[:9].tolist()))
    assert a["Blond_Hair"] == 1 and a["Black_Hair"] == 0 and a["Bangs"] == 1  # untouched keeps source
    assert c[9:].tolist() == [1.0, 0.0] and c[5:9].abs().sum() == 0


def test_edit_passes_one_per_label_group_scaled_by_strength():
    schema = LabelSchema()
    passes = edit_passes(schema, {"Eyeglasses": True, "Gray_Hair": True}, SOURCE, strength=0.5)
    assert len(passes) == 2 and passes[1][9:].tolist() == [0.0, 1.0] and passes[1][:5].abs().sum() == 0
    assert passes[1][schema.attributes.index("Eyeglasses")] == 0.5


def test_edit_pass_of_strength_zero_is_the_source_labels():
    schema = LabelSchema()
    (c0,) = edit_passes(schema, {"Blond_Hair": True}, SOURCE, strength=0.0)
    assert c0[schema.attributes.index("Black_Hair")] == 1


@pytest.mark.parametrize(
    ("targets", "strength", "message"),
    [({"Smiling": True}, 1.0, "Unknown attribute"), ({"Bangs": True}, 2.5, "Strength")],
)
def test_edit_passes_refuse_unknown_attributes_and_strength_out_of_range(targets, strength, message):
    with pytest.raises(LabelError, match=message):
        edit_passes(LabelSchema(), targets, strength=strength)


def test_single_attribute_edits_one_per_attribute():
    assert len(single_attribute_edits(LabelSchema())) == 9


def test_weights_round_trip(tmp_path):
    G, D = Generator(TINY_STARGAN), Discriminator(TINY_STARGAN)
    path = save_weights(tmp_path / "w.safetensors", "stargan", TINY_STARGAN, {"G": G, "D": D}, info={"steps": 3})
    loaded = load_weights(path)
    assert loaded.config == TINY_STARGAN and loaded.info["steps"] == 3
    x, c = torch.randn(1, 3, 32, 32), torch.zeros(1, 11)
    with torch.no_grad():
        assert torch.equal(loaded.modules["G"](x, c), G(x, c))


def test_weights_of_another_kind_are_refused(tmp_path):
    with pytest.raises(WeightsError, match="cgan model is needed"):
        load_weights(tiny_stargan_weights(tmp_path / "w.safetensors"), kind="cgan")


def test_a_missing_weights_file_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "missing.safetensors")


def test_an_unreadable_weights_file_is_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a readable"):
        load_weights(junk)


def test_weights_whose_metadata_lies_about_the_shapes_are_refused(tmp_path):
    wrong = dataclasses.replace(TINY_STARGAN, conv_dim=16)
    save_weights(tmp_path / "bad.safetensors", "stargan", wrong, {"G": Generator(TINY_STARGAN)})
    with pytest.raises(WeightsError, match="do not match"):
        load_weights(tmp_path / "bad.safetensors")


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference not present")
def test_import_official_is_bit_exact(tmp_path):
    layout = json.loads(REFERENCE.read_text())
    gen = torch.Generator().manual_seed(0)
    states = {}
    for name in ("celeba_5attrs_G", "celeba_5attrs_D_128"):
        states[name] = {
            k: (
                torch.randint(0, 9, shape, generator=gen)
                if k.endswith("num_batches_tracked")
                else torch.randn(shape, generator=gen)
            )
            for k, shape in layout[name].items()
        }
        torch.save(states[name], tmp_path / f"{name}.ckpt")
    out = import_official(
        tmp_path / "celeba_5attrs_G.ckpt",
        tmp_path / "celeba_5attrs_D_128.ckpt",
        "Black_Hair,Blond_Hair,Brown_Hair,Male,Young",
        128,
        tmp_path / "official.safetensors",
    )
    loaded = load_weights(out)
    for key, t in states["celeba_5attrs_G"].items():
        assert torch.equal(loaded.modules["G"].state_dict()[key], t), key
    for key, t in states["celeba_5attrs_D_128"].items():
        assert torch.equal(loaded.modules["D"].state_dict()[key], t), key
    editor = FaceEditor.from_pretrained(out)
    assert editor.attributes == ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
    with pytest.raises(WeightsError, match="label values"):
        import_official(
            tmp_path / "celeba_5attrs_G.ckpt", None, "Black_Hair,Blond_Hair", 128, tmp_path / "x.safetensors"
        )


@pytest.fixture(scope="module")
def editor() -> FaceEditor:
    return FaceEditor(*tiny_stargan(), detector=FakeDetector())


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8))


def test_edit_changes_the_photo_only_around_the_face(editor, photo):
    result = editor.edit(photo, {"Blond_Hair": True, "Eyeglasses": True}, strength=1.0)
    assert result.image.size == photo.size and result.face_after.size == (32, 32)
    assert set(result.attributes_before) == set(TINY_STARGAN.labels.attributes)
    diff = np.abs(np.asarray(result.image, np.int16) - np.asarray(photo, np.int16))
    assert diff[:50, :50].max() == 0 and diff[200:260, 200:260].mean() > 1  # edited only around the face


def test_an_empty_edit_returns_the_photo(editor, photo):
    assert np.array_equal(np.asarray(editor.edit(photo, {}).image), np.asarray(photo))


def test_strength_zero_keeps_the_photo(editor, photo):
    unchanged = editor.edit(photo, {"Blond_Hair": True, "Eyeglasses": True}, strength=0.0)
    assert np.array_equal(np.asarray(unchanged.image), np.asarray(photo))  # G ran, but only its change is pasted


def test_without_keep_detail_the_generator_output_replaces_the_face(editor, photo):
    replaced = editor.edit(photo, {"Blond_Hair": True}, strength=0.0, keep_detail=False)
    assert not np.array_equal(np.asarray(replaced.image), np.asarray(photo))  # the random G's own output


def test_preview_grid_has_a_tile_per_edit_and_keep_detail_changes_it(editor, photo):
    grid = editor.preview_grid(photo)
    assert grid.size[0] > 9 * 32
    grid_raw = editor.preview_grid(photo, keep_detail=False)
    assert grid_raw.size == grid.size and grid_raw.tobytes() != grid.tobytes()


def test_no_face_and_a_face_index_past_the_end_are_refused(editor, photo):
    with pytest.raises(NoFaceError):
        FaceEditor(Generator(TINY_STARGAN), detector=FakeDetector(0)).edit(photo, {"Bangs": True})
    with pytest.raises(NoFaceError, match="1 face"):
        editor.edit(photo, {"Bangs": True}, face_index=3)


@pytest.fixture(scope="module")
def sampler(tmp_path_factory) -> ClassSampler:
    cfg = CGANConfig(g_hidden=(16, 32), d_hidden=(16,))
    path = save_weights(tmp_path_factory.mktemp("cgan") / "c.safetensors", "cgan", cfg, {"G": CGANGenerator(cfg)})
    return ClassSampler.from_pretrained(path)


def test_class_sampler_is_seeded(sampler):
    assert sampler.classes == [str(i) for i in range(10)]
    a, b = sampler.sample(3, n=4, seed=1), sampler.sample("3", n=4, seed=1)
    assert len(a) == 4 and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(sampler.sample(3, n=4, seed=2)[0]))


def test_class_sampler_grid_has_a_row_per_class(sampler):
    assert sampler.grid(n_per_class=2).size[1] > 10 * 28


def test_class_sampler_refuses_unknown_classes_and_stargan_weights(sampler, tmp_path):
    with pytest.raises(LabelError):
        sampler.sample("cat")
    with pytest.raises(WeightsError, match="cgan model is needed"):
        ClassSampler.from_pretrained(tiny_stargan_weights(tmp_path / "s.safetensors"))


def test_re_edit_of_a_prepared_face_runs_g_once():
    editor = FaceEditor(*tiny_stargan(), detector=FakeDetector())
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8))
    prep = editor.prepare(img)
    calls = []
    editor.G.register_forward_hook(lambda module, inputs, output: calls.append(1))
    editor.edit(prep, {"Blond_Hair": True})
    assert len(calls) == 1  # the edit and the no-edit path G(x, c_src), in one batched forward
    editor.edit(prep, {"Black_Hair": True}, strength=0.5)
    assert len(calls) == 2  # a re-edit in the same label group reuses the no-edit path
    editor.edit(prep, {"Eyeglasses": True, "Gray_Hair": True})
    assert len(calls) == 2 + 2 + 2  # both groups: two passes, and the no-edit path of that pair once


def test_gaussian_blur_keeps_flat_colour_and_removes_the_checkerboard():
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat, atol=1e-6)
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2).float().expand(1, 3, 16, 16) * 2 - 1
    assert gaussian_blur(checker, 1.0)[..., 3:-3, 3:-3].abs().max() < 0.02  # period-2 speckle is all but gone
    assert gaussian_blur(checker, 0.0) is checker


class CheckerboardChangeG(Generator):
    """An image G whose edit adds a +-0.5 checkerboard to its input (the speckle of transposed convolutions)."""

    def forward(self, x, c):
        edit = c[:, :1].view(-1, 1, 1, 1)  # Bangs on or off
        checker = ((torch.arange(x.size(2))[:, None] + torch.arange(x.size(3))[None, :]) % 2).to(x) - 0.5
        return (x + edit * checker).clamp(-1, 1)


def checkerboard_change(sigma: float, window: float) -> np.ndarray:
    """|face_after - face_before| of a Bangs edit by CheckerboardChangeG on a grey photo, (H, W)."""
    img = Image.new("RGB", (480, 640), (128, 128, 128))
    editor = FaceEditor(
        CheckerboardChangeG(TINY_STARGAN), detector=FakeDetector(), change_smoothing=sigma, change_window=window
    )
    prep = editor.prepare(img)
    prep.attributes = {a: 0.0 for a in TINY_STARGAN.labels.attributes}
    after = np.asarray(editor.edit(prep, {"Bangs": True}).face_after, np.float32)
    return np.abs(after - np.asarray(prep.aligned.crop, np.float32)).mean(2)


def test_the_pasted_change_of_an_image_generator_is_smoothed():
    raw, smoothed = checkerboard_change(0.0, 0.0)[4:-4, 4:-4].mean(), checkerboard_change(1.0, 0.0)[4:-4, 4:-4].mean()
    assert raw > 40 and smoothed < 0.1 * raw, (raw, smoothed)


def test_elliptical_window_is_one_inside_and_zero_in_the_corners():
    w = elliptical_window(32, 0.6)
    assert w[14:18, 14:18].min() == 1 and w[0, 0] == w[0, -1] == w[-1, 0] == w[-1, -1] == 0
    assert torch.equal(w, w.flip(0)) and torch.equal(w, w.T)


def test_the_change_of_an_image_generator_fades_out_in_the_crop_corners():
    full, windowed = checkerboard_change(0.0, 0.0), checkerboard_change(0.0, 0.6)
    assert full[:4, :4].mean() > 40 and windowed[:4, :4].max() == 0  # no square edge in the photo
    assert np.allclose(windowed[14:18, 14:18], full[14:18, 14:18], atol=1)  # the centre keeps its full change
