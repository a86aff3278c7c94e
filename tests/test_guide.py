"""The robust attribute guide: PGD-L2 stays inside its ball and the model range, `train guide` resumes exactly and
exports a file the recipes read, G's loss reads the guide (not D's classification head) and leaves it untouched,
a run with the guide killed and resumed ends bit-identical, and an eval refuses the guiding file as its reader."""

import dataclasses

import pytest
import torch
from conftest import SHARED_CELEBA, TINY_STARGAN, tiny_celeba, tiny_guide, tiny_guide_weights, tiny_stargan
from test_augment import FP32, tiny_config, tiny_data
from test_recipes import Killed, assert_killed_run_resumes_bit_identical

from stargan_app.checkpoint import file_sha256, load_frozen_guide, load_weights
from stargan_app.errors import StarGANAppError, WeightsError
from stargan_app.evaluation.guide import ascend, ascent_grid
from stargan_app.evaluation.stargan import reader_for
from stargan_app.inference import FaceEditor
from stargan_app.training import guide_loop, losses
from stargan_app.training.adversarial import attribute_bce, pgd_l2, project_l2
from stargan_app.training.batches import draw_batch
from stargan_app.training.options import GuideTrainConfig
from stargan_app.training.recipes import guide_loss, recipe_for
from stargan_app.training.resume import load_resume

CONDITIONAL = dataclasses.replace(TINY_STARGAN, cond_head=True)


def test_projection_scales_only_what_leaves_the_ball():
    delta = torch.stack([torch.full((3, 4, 4), 0.01), torch.full((3, 4, 4), 1.0)])
    out = project_l2(delta, 0.5)
    assert torch.equal(out[0], delta[0])
    torch.testing.assert_close(out[1].norm(), torch.tensor(0.5))


def test_pgd_stays_inside_its_radius_and_the_model_range_and_raises_the_loss():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 32, 32, generator=gen) * 2 - 1
    x[:4] = x[:4].sign()  # saturated faces: any step outwards must be clipped
    labels = (torch.rand(16, 9, generator=gen) < 0.3).float()
    guide = tiny_guide()
    for radius in (0.5, 3.0):
        x_adv = pgd_l2(guide, x, labels, radius, steps=3, gen=torch.Generator().manual_seed(1))
        assert (x_adv - x).flatten(1).norm(dim=1).max() <= radius * (1 + 1e-5)
        assert x_adv.min() >= -1 and x_adv.max() <= 1
        assert attribute_bce(guide(x_adv), labels) > attribute_bce(guide(x), labels)
    assert all(p.grad is None and p.requires_grad for p in guide.parameters())  # the attack trains nothing


def guide_config(tmp_path, **kw) -> GuideTrainConfig:
    base = dict(
        data_dir=tiny_celeba(tmp_path),
        image_size=32,
        width=4,
        test_size=4,
        batch_size=4,
        epochs=2,
        radius=1.0,
        pgd_steps=2,
        log_every=2,
        save_every=2,
        device="cpu",
    )
    return GuideTrainConfig(**{**base, **kw})


def test_train_guide_resumes_bit_identical_and_exports_a_guide_a_recipe_reads(tmp_path, monkeypatch):
    full = guide_config(tmp_path, run_dir=str(tmp_path / "full"), out=str(tmp_path / "full.safetensors"))
    guide_loop.train_guide(full)  # 18 training images: 4 steps an epoch, 8 in all
    part = guide_config(tmp_path, run_dir=str(tmp_path / "part"), out=str(tmp_path / "part.safetensors"))
    real_step = guide_loop.guide_step

    def step_then_kill(*args):
        if args[4] == 5:  # guide_step(state, images, labels, cfg, step, ...)
            raise Killed
        return real_step(*args)

    monkeypatch.setattr(guide_loop, "guide_step", step_then_kill)
    with pytest.raises(Killed):
        guide_loop.train_guide(part)
    assert load_resume(part.run_dir)["step"] == 4
    monkeypatch.undo()
    guide_loop.train_guide(part)
    a, b = load_weights(full.out, kind="guide"), load_weights(part.out, kind="guide")
    for name, t in a.modules["guide"].state_dict().items():
        assert torch.equal(t, b.modules["guide"].state_dict()[name]), name
    assert set(a.info["recall"]) == set(a.config.attributes) and "PGD-L2, radius 1.0" in a.info["adversarial_training"]
    guide, provenance = load_frozen_guide(full.out, TINY_STARGAN.labels.attributes, torch.device("cpu"))
    assert not guide.training and provenance["sha256"] == file_sha256(full.out)


def test_a_guide_of_other_attributes_is_refused(tmp_path):
    path = tiny_guide_weights(tmp_path / "guide.safetensors")
    other = dataclasses.replace(TINY_STARGAN.labels, groups=(("Bangs", "Black_Hair"),))
    with pytest.raises(WeightsError, match="not this run's attributes"):
        load_frozen_guide(str(path), other.attributes, torch.device("cpu"))


def guided_batch(recipe: str, **kw):
    """(recipe with a frozen tiny guide, G, D, group-B batch, guide) on the tiny model."""
    cfg = tiny_config(recipe=recipe, **kw)
    guide = tiny_guide().requires_grad_(False)
    mcfg = CONDITIONAL if recipe == "conditional" else TINY_STARGAN
    G, D = tiny_stargan(mcfg)
    return recipe_for(cfg, guide), G, D, draw_batch(tiny_data(), mcfg.labels, cfg, 1, 0), guide


def test_g_loss_with_the_guide_reads_the_guide_not_d_classification_head():
    recipe, G, D, batch, guide = guided_batch("v2")
    loss, logs = recipe.g_loss(G, D, batch, 1, FP32)
    with torch.no_grad():
        torch.testing.assert_close(logs["G/guide"], guide_loss(guide, G(batch.x, batch.c_trg), batch))
        D.conv2.weight.normal_()  # D's classification head
    torch.testing.assert_close(recipe.g_loss(G, D, batch, 1, FP32)[0], loss)  # replaced: not read
    with torch.no_grad():
        guide.head.weight.normal_()
    assert not torch.allclose(recipe.g_loss(G, D, batch, 1, FP32)[0], loss)  # the guide is read
    assert recipe.loss_weights()["g_cls"] == 0.0


def test_the_guide_is_bit_identical_after_a_g_step():
    recipe, G, D, batch, guide = guided_batch("conditional", lambda_guide=5.0)
    before = {k: v.clone() for k, v in guide.state_dict().items()}  # BatchNorm statistics included
    opt = torch.optim.Adam(G.parameters(), 1e-2)
    g_before = [p.clone() for p in G.parameters()]
    loss, logs = recipe.g_loss(G, D, batch, 1, FP32)
    loss.backward()
    opt.step()
    assert "G/guide" in logs and any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    assert all(torch.equal(v, before[k]) for k, v in guide.state_dict().items())
    assert all(p.grad is None for p in guide.parameters())


@pytest.mark.parametrize("recipe", ["conditional", "v2"])
def test_a_run_with_the_guide_killed_three_times_resumes_bit_identical(tmp_path, monkeypatch, recipe):
    guide = tiny_guide_weights(tmp_path / "guide.safetensors")
    assert_killed_run_resumes_bit_identical(tmp_path, monkeypatch, recipe=recipe, guide=str(guide), lambda_guide=2.0)


def test_the_guide_is_in_the_stage_and_an_eval_refuses_it_as_the_reader(tmp_path):
    from test_training import tiny_train_config

    from stargan_app.training.stargan_loop import train_stargan

    guide = tiny_guide_weights(tmp_path / "guide.safetensors")
    other = tiny_guide_weights(tmp_path / "other.safetensors", seed=1)
    cfg = tiny_train_config(tmp_path, recipe="conditional", guide=str(guide), num_iters=2)
    train_stargan(cfg)
    editor = FaceEditor.from_pretrained(cfg.out)
    stage = editor.info["stages"][-1]
    assert stage["guide"]["sha256"] == file_sha256(guide) and stage["loss_weights"]["guide"] == 1.0
    with pytest.raises(StarGANAppError, match="guided this G"):
        reader_for(str(guide), editor)
    read, sha = reader_for(str(other), editor)
    assert sha == file_sha256(other) and read(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 9)


def test_ascent_raises_the_logit_within_its_budget_and_the_grid_is_drawn(tmp_path):
    guide = tiny_guide()
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    up = ascend(guide, x, attribute=2, radius=2.0, steps=10)
    assert (up - x).flatten(1).norm(dim=1).max() <= 2.0 * (1 + 1e-5) and up.abs().max() <= 1
    with torch.no_grad():
        assert (guide(up)[:, 2] > guide(x)[:, 2]).all()
    out = ascent_grid(guide, x, tuple(TINY_STARGAN.labels.attributes), tmp_path / "grid.png", radius=1.0)
    from PIL import Image

    with Image.open(out) as im:
        assert im.width > 10 * 32 and im.height > 3 * 32  # a column per attribute and the input, a row per face


def test_the_guides_term_is_the_classification_loss_of_its_group_columns():
    recipe, G, D, batch, guide = guided_batch("v2")
    fake = torch.rand(4, 3, 32, 32) * 2 - 1
    expected = losses.classification_loss(guide(fake)[:, 5:9], batch.label_trg)  # step 1: label group B
    torch.testing.assert_close(guide_loss(guide, fake, batch), expected)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_CELEBA.is_dir(), reason="../shared/data/celeba-10k not present")
def test_train_guide_and_its_ascent_grid_run_on_the_shared_data(tmp_path):
    from PIL import Image

    from stargan_app.cli import main

    torch.set_num_threads(1)
    weights = tmp_path / "guide.safetensors"
    args = ["train", "guide", "--data-dir", str(SHARED_CELEBA), "--max-images", "128", "--epochs", "1"]
    assert main([*args, "--run-dir", str(tmp_path / "run"), "--out", str(weights)]) == 0
    info = load_weights(weights, kind="guide").info
    assert info["steps"] == 2 and 0 <= info["recall"]["Eyeglasses"] <= 1  # 128 faces, batches of 64
    grid = tmp_path / "grid.png"
    command = ["eval", "guide", "--weights", str(weights), "--data-dir", str(SHARED_CELEBA), "--faces", "2"]
    assert main([*command, "--out", str(grid)]) == 0
    with Image.open(grid) as im:
        assert im.size[0] >= 10 * 2 * 64 and im.size[1] >= 2 * 2 * 64  # input + 9 attributes, two faces, at 2x


def test_a_run_resumed_with_another_guide_is_refused(tmp_path):
    from test_training import tiny_train_config

    from stargan_app.training.stargan_loop import train_stargan

    guide = tiny_guide_weights(tmp_path / "guide.safetensors")
    other = tiny_guide_weights(tmp_path / "other.safetensors", seed=1)
    cfg = tiny_train_config(tmp_path, recipe="conditional", guide=str(guide), num_iters=2, out="")
    train_stargan(cfg)
    for swapped in (str(other), ""):
        with pytest.raises(WeightsError, match="was trained with guide"):
            train_stargan(dataclasses.replace(cfg, guide=swapped, num_iters=4))
    train_stargan(dataclasses.replace(cfg, num_iters=4))  # its own guide: goes on


def test_the_keep_term_charges_a_change_to_the_other_groups_attributes_only():
    recipe, G, D, batch, guide = guided_batch("v2")  # step 1: label group B, so group A is "the other" group
    x = batch.x
    plain = guide_loss(guide, x, batch)
    with torch.no_grad():
        source = torch.sigmoid(guide(x))
    kept = guide_loss(guide, x, batch, keep=2.0)
    by_hand = losses.classification_loss(guide(x)[:, :5], source[:, :5])  # the input itself: only the entropy
    torch.testing.assert_close(kept, plain + 2.0 * by_hand)
    moved = x.flip(2)  # an "edit" that changes what the guide reads in group A
    assert guide_loss(guide, moved, batch, keep=2.0) - guide_loss(guide, moved, batch) > 2.0 * by_hand
