"""Fast engine tests: tiny random-weight models, synthetic inputs, CPU."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan_app.checkpoint import load_weights, save_weights
from stargan_app.config import CGANConfig, LabelSchema, StarGANConfig
from stargan_app.errors import LabelError, NoFaceError, WeightsError
from stargan_app.face.align import celeba_reference_points
from stargan_app.face.detect import DetectedFace
from stargan_app.imaging import elliptical_window, gaussian_blur
from stargan_app.inference import ClassSampler, FaceEditor
from stargan_app.labels import edit_passes, single_attribute_edits
from stargan_app.models import CGANGenerator, Discriminator, Generator
from stargan_app.training.official import import_official

TINY = StarGANConfig(image_size=32, conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=4)
REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "official_stargan_state_dict_layout.json"


def test_shapes_and_label_layout():
    assert TINY.labels.c_dim == 11 and TINY.labels.cls_dim == 9
    G, D = Generator(TINY), Discriminator(TINY)
    x = torch.randn(2, 3, 32, 32)
    assert G(x, torch.zeros(2, 11)).shape == x.shape
    src, cls = D(x)
    assert src.shape == (2, 1, 2, 2) and cls.shape == (2, 9)


def test_eval_mode_uses_instance_statistics():
    cfg = StarGANConfig(image_size=32, conv_dim=8, g_repeat_num=1, d_repeat_num=4, track_running_stats=True)
    G = Generator(cfg)
    for m in G.modules():
        if hasattr(m, "running_mean") and m.running_mean is not None:
            m.running_mean.fill_(5.0)  # garbage running stats must not matter
    x, c = torch.randn(1, 3, 32, 32), torch.zeros(1, 11)
    with torch.no_grad():
        assert torch.equal(G.train()(x, c), G.eval()(x, c))


def test_edit_passes_groups_strength_and_exclusive_hair():
    schema = LabelSchema()
    source = {"Black_Hair": 0.9, "Bangs": 0.8, "Eyeglasses": 0.1}
    (c,) = edit_passes(schema, {"Blond_Hair": True}, source, strength=1.0)
    a = dict(zip(schema.attributes, c[:9].tolist()))
    assert a["Blond_Hair"] == 1 and a["Black_Hair"] == 0 and a["Bangs"] == 1  # untouched keeps source
    assert c[9:].tolist() == [1.0, 0.0] and c[5:9].abs().sum() == 0
    passes = edit_passes(schema, {"Eyeglasses": True, "Gray_Hair": True}, source, strength=0.5)
    assert len(passes) == 2 and passes[1][9:].tolist() == [0.0, 1.0] and passes[1][:5].abs().sum() == 0
    assert passes[1][schema.attributes.index("Eyeglasses")] == 0.5
    (c0,) = edit_passes(schema, {"Blond_Hair": True}, source, strength=0.0)
    assert c0[schema.attributes.index("Black_Hair")] == 1  # strength 0 = source labels
    with pytest.raises(LabelError, match="Unknown attribute"):
        edit_passes(schema, {"Smiling": True})
    with pytest.raises(LabelError, match="Strength"):
        edit_passes(schema, {"Bangs": True}, strength=2.5)
    assert len(single_attribute_edits(schema)) == 9


def test_weights_round_trip_and_errors(tmp_path):
    G, D = Generator(TINY), Discriminator(TINY)
    path = save_weights(tmp_path / "w.safetensors", "stargan", TINY, {"G": G, "D": D}, info={"steps": 3})
    loaded = load_weights(path)
    assert loaded.config == TINY and loaded.info["steps"] == 3
    x, c = torch.randn(1, 3, 32, 32), torch.zeros(1, 11)
    with torch.no_grad():
        assert torch.equal(loaded.modules["G"](x, c), G(x, c))
    with pytest.raises(WeightsError, match="cgan model is needed"):
        load_weights(path, kind="cgan")
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a readable"):
        load_weights(junk)
    wrong = StarGANConfig(image_size=32, conv_dim=16, g_repeat_num=1, d_conv_dim=8, d_repeat_num=4)
    save_weights(tmp_path / "bad.safetensors", "stargan", wrong, {"G": G})  # metadata lies about the shapes
    with pytest.raises(WeightsError, match="do not match"):
        load_weights(tmp_path / "bad.safetensors")


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference not present")
def test_import_official_is_bit_exact(tmp_path):
    layout = json.loads(REFERENCE.read_text())
    gen = torch.Generator().manual_seed(0)
    states = {}
    for name in ("celeba_5attrs_G", "celeba_5attrs_D_128"):
        states[name] = {
            k: (torch.randint(0, 9, shape, generator=gen) if k.endswith("num_batches_tracked") else torch.randn(shape, generator=gen))
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
        import_official(tmp_path / "celeba_5attrs_G.ckpt", None, "Black_Hair,Blond_Hair", 128, tmp_path / "x.safetensors")


class FakeDetector:
    """Returns one face whose landmarks sit where CelebA geometry puts them in a 256 px square."""

    def __init__(self, faces: int = 1):
        self.faces = faces

    def detect(self, img):
        p = celeba_reference_points(256) + 100
        lm = np.array([p[0], p[1], (p[0] + p[1]) / 2 + [0, 15], p[2] - [12, 0], p[2] + [12, 0]])
        return [DetectedFace((100.0, 100.0, 356.0, 356.0), lm, 0.99)] * self.faces


def test_face_editor_edit_and_grid_with_tiny_model():
    torch.manual_seed(0)
    editor = FaceEditor(Generator(TINY), Discriminator(TINY), detector=FakeDetector())
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8))
    result = editor.edit(img, {"Blond_Hair": True, "Eyeglasses": True}, strength=1.0)
    assert result.image.size == img.size and result.face_after.size == (32, 32)
    assert set(result.attributes_before) == set(TINY.labels.attributes)
    diff = np.abs(np.asarray(result.image, np.int16) - np.asarray(img, np.int16))
    assert diff[:50, :50].max() == 0 and diff[200:260, 200:260].mean() > 1  # edited only around the face
    assert editor.preview_grid(img).size[0] > 9 * 32
    nothing = editor.edit(img, {})
    assert np.array_equal(np.asarray(nothing.image), np.asarray(img))
    unchanged = editor.edit(img, {"Blond_Hair": True, "Eyeglasses": True}, strength=0.0)
    assert np.array_equal(np.asarray(unchanged.image), np.asarray(img))  # G ran, but only its change is pasted
    replaced = editor.edit(img, {"Blond_Hair": True}, strength=0.0, keep_detail=False)
    assert not np.array_equal(np.asarray(replaced.image), np.asarray(img))  # the random G's own output
    grid_raw = editor.preview_grid(img, keep_detail=False)
    assert grid_raw.size == editor.preview_grid(img).size and grid_raw.tobytes() != editor.preview_grid(img).tobytes()
    with pytest.raises(NoFaceError):
        FaceEditor(Generator(TINY), detector=FakeDetector(0)).edit(img, {"Bangs": True})
    with pytest.raises(NoFaceError, match="1 face"):
        editor.edit(img, {"Bangs": True}, face_index=3)


def test_class_sampler_seeded(tmp_path):
    cfg = CGANConfig(g_hidden=(16, 32), d_hidden=(16,))
    path = save_weights(tmp_path / "c.safetensors", "cgan", cfg, {"G": CGANGenerator(cfg)})
    sampler = ClassSampler.from_pretrained(path)
    assert sampler.classes == [str(i) for i in range(10)]
    a, b = sampler.sample(3, n=4, seed=1), sampler.sample("3", n=4, seed=1)
    assert len(a) == 4 and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(sampler.sample(3, n=4, seed=2)[0]))
    assert sampler.grid(n_per_class=2).size[1] > 10 * 28
    with pytest.raises(LabelError):
        sampler.sample("cat")
    with pytest.raises(WeightsError, match="cgan model is needed"):
        ClassSampler.from_pretrained(save_weights(tmp_path / "s.safetensors", "stargan", TINY, {"G": Generator(TINY)}))


def test_re_edit_of_a_prepared_face_runs_g_once():
    torch.manual_seed(0)
    editor = FaceEditor(Generator(TINY), Discriminator(TINY), detector=FakeDetector())
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8))
    prep = editor.prepare(img)
    calls = []
    editor.G.register_forward_hook(lambda module, inputs, output: calls.append(1))
    editor.edit(prep, {"Blond_Hair": True})
    assert len(calls) == 2  # the edit and the no-edit path G(x, c_src)
    editor.edit(prep, {"Black_Hair": True}, strength=0.5)
    assert len(calls) == 3  # a re-edit in the same label group reuses the no-edit path
    editor.edit(prep, {"Eyeglasses": True, "Gray_Hair": True})
    assert len(calls) == 3 + 2 + 2  # both groups: two passes, and the no-edit path of that pair once


def test_gaussian_blur_keeps_flat_colour_and_removes_the_checkerboard():
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat, atol=1e-6)
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2).float().expand(1, 3, 16, 16) * 2 - 1
    assert gaussian_blur(checker, 1.0)[..., 3:-3, 3:-3].abs().max() < 0.02  # period-2 speckle is all but gone
    assert gaussian_blur(checker, 0.0) is checker


class CheckerboardChangeG(Generator):
    """An image G whose edit adds a +-0.5 checkerboard to its input (the speckle of transposed convolutions)."""

    def _parts(self, x, c):
        edit = c[:, :1].view(-1, 1, 1, 1)  # Bangs on or off
        checker = ((torch.arange(x.size(2))[:, None] + torch.arange(x.size(3))[None, :]) % 2).to(x) - 0.5
        out = (x + edit * checker).clamp(-1, 1)
        return out, out, None


def checkerboard_change(sigma: float, window: float) -> np.ndarray:
    """|face_after - face_before| of a Bangs edit by CheckerboardChangeG on a grey photo, (H, W)."""
    img = Image.new("RGB", (480, 640), (128, 128, 128))
    editor = FaceEditor(CheckerboardChangeG(TINY), detector=FakeDetector(), change_smoothing=sigma, change_window=window)
    prep = editor.prepare(img)
    prep.attributes = {a: 0.0 for a in TINY.labels.attributes}
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
