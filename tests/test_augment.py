"""DiffAugment (training/augment.py) and how the StarGAN losses use it: differentiable, the same policy for real and
fake images, and with the option off the losses and a whole step are unchanged (pinned values).

How the pinned literals were produced: `losses_and_step(recipe)` below, run on the code at git cf7fb1f (before the
augmentation existed), CPU, torch 2.14.1; printed to 6 decimals and pasted here.
"""

from dataclasses import replace

import pytest
import torch
from conftest import TINY_DIMS, TINY_STARGAN, tiny_stargan

from stargan_app.training import augment, stargan_loop
from stargan_app.training.batches import TrainingData, draw_batch
from stargan_app.training.devices import Autocast
from stargan_app.training.options import AUGMENTATIONS, StarGANTrainConfig, parse_policy
from stargan_app.training.recipes import recipe_for
from stargan_app.training.runs import new_gan_state
from stargan_app.training.stargan_loop import train_step

TOL = dict(atol=1e-4, rtol=1e-4)
FP32 = Autocast(torch.device("cpu"), False)


def photo_batch(n: int = 4, size: int = 32) -> torch.Tensor:
    """A batch with structure (a gradient plus noise), so shifts and holes change it visibly."""
    ramp = torch.linspace(-1, 1, size).view(1, 1, 1, size).expand(n, 3, size, size)
    return (ramp + 0.1 * torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)


def test_parse_policy_names_and_refuses_unknown():
    assert parse_policy("") == ()
    assert parse_policy(" translation, cutout ") == ("translation", "cutout")
    with pytest.raises(ValueError, match="colour"):
        parse_policy("translation,colour")
    with pytest.raises(ValueError, match="colour"):
        tiny_config(augment="translation,colour")  # a run's config refuses it before anything runs
    assert set(AUGMENTATIONS) == set(augment.AUGMENTATIONS)


def test_empty_policy_returns_the_images_and_draws_nothing():
    x, gen = photo_batch(), torch.Generator().manual_seed(3)
    before = gen.get_state()
    assert augment.diff_augment(x, (), gen) is x
    assert torch.equal(gen.get_state(), before)


def test_translation_shifts_each_image_by_whole_pixels_and_reflects_at_the_border():
    x = photo_batch()
    out = augment.translate(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    pad = round(32 * augment.TRANSLATION_RATIO)
    for i in range(len(x)):  # each output is the padded input cut at some offset within the pad
        padded = torch.nn.functional.pad(x[i : i + 1], (pad,) * 4, mode="reflect")[0]
        found = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(padded[:, dy : dy + 32, dx : dx + 32], out[i])
        ]
        assert found, f"image {i} is not a shifted copy"
    assert not torch.equal(out, x)
    assert (out.abs() > 0).all()  # reflected, never zero-filled borders


def test_cutout_greys_one_square_of_a_quarter_side_per_image():
    x = photo_batch() + 2  # no pixel is 0 before the cut
    out = augment.cutout(x, torch.Generator().manual_seed(2))
    side = round(32 * augment.CUTOUT_RATIO)
    holes = (out == 0).all(1)  # (B, H, W)
    assert holes.flatten(1).sum(1).tolist() == [side * side] * len(x)
    rows, cols = holes[0].nonzero().T
    assert rows.max() - rows.min() + 1 == side and cols.max() - cols.min() + 1 == side
    torch.testing.assert_close(out[~holes.unsqueeze(1).expand_as(out)], x[~holes.unsqueeze(1).expand_as(x)])


def test_augmentation_is_differentiable():
    x = photo_batch().requires_grad_(True)
    out = augment.diff_augment(x, ("translation", "cutout"), torch.Generator().manual_seed(4))
    (out * torch.arange(out.numel()).view_as(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert (x.grad == 0).any()  # cut-out pixels pass no gradient


def test_the_same_policy_yields_the_same_draws_for_the_same_generator_state():
    x = photo_batch()
    a = augment.diff_augment(x, ("translation", "cutout"), torch.Generator().manual_seed(5))
    b = augment.diff_augment(x, ("translation", "cutout"), torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


# ---------------------------------------------------------------- in the losses


def tiny_config(**kw) -> StarGANTrainConfig:
    dims = {name: getattr(TINY_STARGAN, name) for name in TINY_DIMS}
    return StarGANTrainConfig(**dims, batch_size=4, device="cpu", **kw)


def tiny_data() -> TrainingData:
    gen = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (12, 3, 32, 32), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 2, (12, 9), generator=gen).float()
    return TrainingData(images, labels, [torch.arange(12), torch.arange(12)], torch.contiguous_format)


def losses_and_step(recipe: str, **kw) -> tuple[float, float, float]:
    """(D loss, G loss) of a seeded tiny model on step 0's batch, then D's loss on step 1's batch after one
    train_step of G and D on step 0's."""
    cfg = tiny_config(recipe=recipe, n_critic=1, **kw)
    G, D = tiny_stargan()
    schema = stargan_loop.model_config(cfg).labels
    data = tiny_data()
    recipe = recipe_for(cfg)
    d_loss, _ = recipe.d_loss(D, G, draw_batch(data, schema, cfg, 0, 0), 0, FP32)
    g_loss, _ = recipe.g_loss(G, D, draw_batch(data, schema, cfg, 0, 0), 0, FP32)
    gan = new_gan_state("stargan", stargan_loop.model_config(cfg), G, D, cfg, cfg.g_lr, cfg.d_lr, {})
    train_step(gan, G, D, draw_batch(data, schema, cfg, 0, 0), recipe, 0, FP32)
    d_after, _ = recipe.d_loss(D, G, draw_batch(data, schema, cfg, 1, 0), 1, FP32)
    return d_loss.item(), g_loss.item(), d_after.item()


@pytest.mark.parametrize(
    ("recipe", "pinned"),
    [
        ("wgan-gp", (13.126134, 9.096983, 12.442456)),
        ("v2", (4.857271, 9.785535, 4.165043)),
    ],
)
def test_without_augmentation_the_losses_and_the_step_are_unchanged(recipe, pinned):
    torch.testing.assert_close(torch.tensor(losses_and_step(recipe)), torch.tensor(pinned), **TOL)


@pytest.mark.parametrize("recipe", ["wgan-gp", "v2"])
def test_augmentation_changes_what_d_sees(recipe):
    plain, augmented = losses_and_step(recipe), losses_and_step(recipe, augment="translation,cutout")
    assert all(abs(a - b) > 1e-4 for a, b in zip(plain[:2], augmented[:2]))


def test_real_and_fake_images_pass_through_the_same_policy(monkeypatch):
    seen = []
    real_augment = augment.diff_augment

    def spy(x, policy, gen):
        seen.append((x.shape[0], policy))
        return real_augment(x, policy, gen)

    monkeypatch.setattr(augment, "diff_augment", spy)
    losses_and_step("v2", augment="translation,cutout")  # step 0: lazy R1, real and fake in separate forwards
    losses_and_step("wgan-gp", augment="translation,cutout")  # real + fake in one forward, then the interpolates
    policies = {policy for _, policy in seen}
    assert policies == {("translation", "cutout")}
    assert (8, ("translation", "cutout")) in seen  # the joint real + fake batch of wgan-gp
    assert len(seen) >= 6  # every D forward of both losses went through it


def test_the_identity_loss_is_the_l1_of_g_at_the_source_labels_and_off_by_default():
    cfg = tiny_config(recipe="v2")
    G, D = tiny_stargan()
    schema, data = stargan_loop.model_config(cfg).labels, tiny_data()
    plain, plain_logs = recipe_for(cfg).g_loss(G, D, draw_batch(data, schema, cfg, 0, 0), 0, FP32)
    with_id, logs = recipe_for(replace(cfg, lambda_id=2.0)).g_loss(G, D, draw_batch(data, schema, cfg, 0, 0), 0, FP32)
    batch = draw_batch(data, schema, cfg, 0, 0)
    expected = (G(batch.x, batch.c_org) - batch.x).abs().mean()
    assert "G/id" not in plain_logs
    torch.testing.assert_close(logs["G/id"], expected)
    torch.testing.assert_close(with_id - plain, 2.0 * expected)
