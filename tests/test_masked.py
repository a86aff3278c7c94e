"""Masked generator, its training losses and its local paste-back (tiny random models, synthetic data, CPU)."""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import TINY_STARGAN, FakeDetector, celeba_landmarks, set_mask_logit, tiny_stargan, tiny_stargan_weights
from PIL import Image

from stargan_app.checkpoint import load_weights
from stargan_app.config import StarGANConfig
from stargan_app.face.align import FacePaster, align_face
from stargan_app.imaging import mask_to_pil
from stargan_app.labels import full_label_vector
from stargan_app.models import Discriminator, Generator
from stargan_app.models.stargan import compose_masked
from stargan_app.training import losses
from stargan_app.training.batches import Batch
from stargan_app.training.config import StarGANTrainConfig
from stargan_app.training.devices import Autocast
from stargan_app.training.recipes import recipe_for
from stargan_app.training.warm_start import init_from_weights

MASKED = dataclasses.replace(TINY_STARGAN, output="masked", upsample="deconv_blur")


def test_masked_g_with_closed_mask_returns_the_input_exactly():
    torch.manual_seed(0)
    G = Generator(MASKED)
    set_mask_logit(G, -1e4)
    x, c = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 11)
    out, colour, mask = G(x, c, return_parts=True)
    assert torch.equal(mask, torch.zeros_like(mask)) and torch.equal(out, x)


def test_masked_g_with_open_mask_returns_the_colour():
    torch.manual_seed(0)
    G = Generator(MASKED)
    set_mask_logit(G, 1e4)
    x, c = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 11)
    out, colour, _ = G(x, c, return_parts=True)
    torch.testing.assert_close(out, colour, atol=1e-6, rtol=0)
    assert not torch.allclose(out, x)


def test_compose_masked_is_a_per_pixel_blend():
    x, colour = torch.full((1, 3, 2, 2), -0.5), torch.full((1, 3, 2, 2), 0.5)
    mask = torch.tensor([[[[0.0, 0.25], [0.5, 1.0]]]])
    assert compose_masked(x, colour, mask)[0, 0].tolist() == [[-0.5, -0.25], [0.0, 0.5]]


def test_image_generator_has_no_mask():
    out, colour, mask = Generator(TINY_STARGAN)(torch.zeros(1, 3, 32, 32), torch.zeros(1, 11), return_parts=True)
    assert mask is None and out is colour


@pytest.mark.parametrize(
    "cfg", [TINY_STARGAN, MASKED, dataclasses.replace(MASKED, upsample="resize")], ids=["image", "masked", "resize"]
)
def test_each_output_mode_is_rebuilt_from_metadata(tmp_path, cfg):
    path = tiny_stargan_weights(tmp_path / "w.safetensors", cfg)
    G, _ = tiny_stargan(cfg)  # the same seed: the weights that were saved
    loaded = load_weights(path, kind="stargan")
    assert loaded.config == cfg
    x, c = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 11)
    with torch.no_grad():
        assert torch.equal(loaded.modules["G"](x, c), G.eval()(x, c))


def test_blurred_upsampling_removes_the_checkerboard():
    from stargan_app.models.stargan import BlurredConvTranspose2d

    plain, blurred = (
        torch.nn.ConvTranspose2d(1, 1, 4, 2, 1, bias=False),
        BlurredConvTranspose2d(1, 1, 4, 2, 1, bias=False),
    )
    with torch.no_grad():
        plain.weight.copy_(torch.rand(1, 1, 4, 4))
        blurred.weight.copy_(plain.weight)
    x = torch.ones(1, 1, 8, 8)

    def nyquist(y):  # energy of the period-2 pattern away from the borders
        y = y[0, 0, 2:-2, 2:-2]
        signs = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(y.size(0) // 2, y.size(1) // 2)
        return float((y * signs).mean().abs().detach())

    assert nyquist(plain(x)) > 0.01 and nyquist(blurred(x)) < 1e-6
    assert set(blurred.state_dict()) == set(plain.state_dict())


def test_blurred_upsampling_replicates_the_border_as_f_pad_does():
    """The blur's border is written as concatenation (torch.compile-safe); its values are F.pad(mode="replicate")'s."""
    from stargan_app.models.stargan import BlurredConvTranspose2d

    layer = BlurredConvTranspose2d(3, 2, 4, 2, 1)
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        up = torch.nn.ConvTranspose2d.forward(layer, x)
        padded = torch.nn.functional.pad(up, (1, 1, 1, 1), mode="replicate")
        expected = torch.nn.functional.conv2d(padded, layer.blur_kernel.expand(2, 1, 3, 3), groups=2)
        assert torch.equal(layer(x), expected)


def test_image_weights_seed_a_masked_generator(tmp_path):
    path = tiny_stargan_weights(tmp_path / "img.safetensors")
    G_img, _ = tiny_stargan()  # the same seed: the weights that were saved
    masked = dataclasses.replace(TINY_STARGAN, output="masked")
    G = Generator(masked)
    info = init_from_weights(str(path), masked, G, Discriminator(masked))
    assert info["init_output"] == "image"
    set_mask_logit(G, 1e4)  # a fully open mask shows the colour branch: the image G's own output
    x, c = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 11)
    with torch.no_grad():
        torch.testing.assert_close(G(x, c), G_img.eval()(x, c), atol=1e-5, rtol=0)


def tiny_batch(cfg: StarGANConfig, n: int = 4) -> Batch:
    torch.manual_seed(1)
    schema = cfg.labels
    org = (torch.rand(n, 5) > 0.5).float()
    trg = org.flip(0)
    return Batch(
        torch.rand(n, 3, 32, 32) * 2 - 1,
        org,
        trg,
        full_label_vector(schema, 0, org),
        full_label_vector(schema, 0, trg),
        schema.group_slice(0),
        torch.rand(n, 1, 1, 1),
    )


def mask_bias_grad(step: int, lambda_mask: float) -> float:
    """d G-loss / d (mask bias) of a tiny masked G at `step`, with a 100-step mask warm-up."""
    G, D = tiny_stargan(MASKED)
    cfg = StarGANTrainConfig(mask_warmup=100, lambda_mask=lambda_mask, lambda_mask_tv=lambda_mask)
    loss, _ = recipe_for(cfg).g_loss(G, D, tiny_batch(MASKED), step, Autocast(torch.device("cpu"), False))
    loss.backward()
    return float(G.main[-1].bias.grad[3])


def test_mask_penalty_scale_waits_then_ramps():
    assert losses.mask_penalty_scale(0, 100) == 0.0 and losses.mask_penalty_scale(100, 100) == 0.0
    assert losses.mask_penalty_scale(150, 100) == 0.5 and losses.mask_penalty_scale(10_000, 100) == 1.0
    assert losses.mask_penalty_scale(0, 0) == 1.0


def test_collapse_guard_keeps_the_mask_penalty_off_during_warm_up():
    # during warm-up the mask's gradient is exactly what it is with no mask penalty at all ...
    assert mask_bias_grad(50, lambda_mask=1.0) == mask_bias_grad(50, lambda_mask=0.0)
    # ... and after it the penalty pushes the mask closed (a larger positive gradient on its bias)
    assert mask_bias_grad(1000, lambda_mask=1.0) > mask_bias_grad(1000, lambda_mask=0.0) + 0.1


@pytest.mark.parametrize("recipe", ["wgan-gp", "v2"])
def test_bf16_cpu_training_losses_are_finite(recipe):
    G, D = tiny_stargan(MASKED)
    cfg = StarGANTrainConfig(recipe=recipe, r1_every=1)
    bf16 = Autocast(torch.device("cpu"), True)
    batch = tiny_batch(MASKED)
    d_loss, d_logs = recipe_for(cfg).d_loss(D, G, batch, 0, bf16)
    d_loss.backward()
    g_loss, g_logs = recipe_for(cfg).g_loss(G, D, batch, 10_000, bf16)
    g_loss.backward()
    for name, value in {**d_logs, **g_logs, "D": d_loss, "G": g_loss}.items():
        assert torch.isfinite(value).all(), name
    assert ("D/gp" in d_logs) == (recipe == "wgan-gp") and ("D/r1" in d_logs) == (recipe == "v2")
    assert all(torch.isfinite(p.grad).all() for p in G.parameters() if p.grad is not None)


def test_masked_paste_back_changes_only_where_the_mask_is_open():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8))  # large and full of texture
    landmarks = celeba_landmarks(64) * 12 + [1500, 900]
    aligned = align_face(photo, landmarks, 64)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:20, 20:40] = 255  # a "hair" patch at the top of the crop
    colour = Image.new("RGB", (64, 64), (250, 220, 120))
    out = FacePaster(photo, aligned.matrix, (64, 64)).paste_masked([(aligned.crop, colour, Image.fromarray(mask, "L"))])
    before, after = np.asarray(photo), np.asarray(out)
    changed = np.abs(after.astype(int) - before).sum(2) > 0
    assert out.size == photo.size and changed.any()
    ys, xs = np.nonzero(changed)
    # the patch's footprint in the photo: crop (20..40, 10..20) scaled by ~12 around the face; nothing else moves
    inv = np.linalg.inv(np.vstack([aligned.matrix, [0, 0, 1]]))
    corners = np.array([[19, 9, 1], [41, 9, 1], [19, 21, 1], [41, 21, 1]]) @ inv.T
    assert xs.min() >= corners[:, 0].min() - 2 and xs.max() <= corners[:, 0].max() + 2
    assert ys.min() >= corners[:, 1].min() - 2 and ys.max() <= corners[:, 1].max() + 2
    assert changed.mean() < 0.01  # a small patch of a 12 MP photo


def test_mask_below_one_step_is_exactly_closed():
    m = torch.tensor([[[0.0, 0.5 / 255, 0.999 / 255, 1 / 255, 1.0]]])
    assert np.asarray(mask_to_pil(m)).tolist() == [[0, 0, 0, 1, 255]]


def masked_editor(count: int = 1):
    """A tiny masked editor that finds `count` faces, one per 200 px tile of the photo, 128 px each."""
    from stargan_app.inference import FaceEditor

    return FaceEditor(*tiny_stargan(MASKED), detector=FakeDetector(count, size=128, origin=(36, 36), step=200))


def test_edit_previews_are_captioned_face_squares_that_apply_their_edit():
    editor = masked_editor()
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    previews = editor.edit_previews(photo, size=96)
    assert len(previews) == 9 and all(p.image.size == (96, 96) for p in previews)
    captions = {p.caption for p in previews}
    assert {"Blond hair", "Black hair"} <= captions and ({"Glasses", "No glasses"} & captions)
    assert not any("_" in c for c in captions)
    blond = next(p for p in previews if p.attribute == "Blond_Hair")
    assert blond.targets == {"Blond_Hair": True}
    assert not np.array_equal(np.asarray(blond.image), np.asarray(previews[0].image))  # each tile is its own edit


def test_face_thumbnails_and_edit_all_faces_cover_every_face():
    editor = masked_editor(count=2)
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 255, (220, 420, 3), dtype=np.uint8))
    thumbs = editor.face_thumbnails(photo, size=64)
    assert [t.size for t in thumbs] == [(64, 64), (64, 64)]
    both = np.asarray(editor.edit_all_faces(photo, {"Blond_Hair": True}).image, int)
    one = np.asarray(editor.edit(photo, {"Blond_Hair": True}).image, int)
    changed_both = np.abs(both - np.asarray(photo, int)).sum(2) > 0
    changed_one = np.abs(one - np.asarray(photo, int)).sum(2) > 0
    assert changed_both[:, 200:].any() and not changed_one[:, 210:].any()  # the second face only with edit_all_faces
