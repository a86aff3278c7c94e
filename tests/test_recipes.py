"""The StarGAN recipes (training/recipes.py): the conditional head reads each face's own value within its label
group, G's loss in the conditional recipe has no classification term, D's warm-up, and a
conditional run killed three times resumes bit-identical to an uninterrupted one."""

import dataclasses

import pytest
import torch
from conftest import TINY_STARGAN, tiny_stargan, tiny_stargan_weights
from test_augment import FP32, tiny_config, tiny_data
from test_training import tiny_train_config

from stargan_app.inference import FaceEditor
from stargan_app.models import Discriminator, Generator
from stargan_app.training import losses, stargan_loop
from stargan_app.training.batches import draw_batch
from stargan_app.training.recipes import recipe_for
from stargan_app.training.resume import load_resume
from stargan_app.training.stargan_loop import train_stargan
from stargan_app.training.warm_start import init_from_weights

CONDITIONAL = dataclasses.replace(TINY_STARGAN, cond_head=True)


def conditional_batch(step: int = 1, **kw):
    """(recipe, G, D, batch) of the conditional recipe on the tiny model; step 1 draws from label group B."""
    cfg = tiny_config(recipe="conditional", **kw)
    G, D = tiny_stargan(CONDITIONAL)
    return recipe_for(cfg), G, D, draw_batch(tiny_data(), CONDITIONAL.labels, cfg, step, 0)


def test_value_logits_pick_each_samples_own_value_within_its_group():
    cond = torch.randn(3, 9, 2)
    group_b = CONDITIONAL.labels.group_slice(1)  # columns 5..8
    values = torch.tensor([[1.0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 0]])
    picked = losses.value_logits(cond, values, group_b)
    expected = torch.tensor([[cond[i, 5 + k, int(values[i, k])] for k in range(4)] for i in range(3)])
    assert torch.equal(picked, expected)
    assert not torch.equal(picked, losses.value_logits(cond, 1 - values, group_b))


def test_discriminator_conditional_head_is_optional_and_shaped_per_attribute_and_value():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert Discriminator(TINY_STARGAN)(x, with_cond=True)[2] is None
    src, cls, cond = Discriminator(CONDITIONAL)(x, with_cond=True)
    assert cond.shape == (2, 9, 2) and cls.shape == (2, 9)
    assert len(Discriminator(CONDITIONAL)(x)) == 2  # the app's reading of attributes is unchanged


def test_the_conditional_losses_read_only_the_batch_groups_attributes():
    recipe, G, D, batch = conditional_batch(step=1)  # group B: columns 5..8 of the head
    before_d, _ = recipe.d_loss(D, G, batch, 1, FP32)
    before_g, _ = recipe.g_loss(G, D, batch, 1, FP32)
    with torch.no_grad():
        D.conv3.weight[:10] += 1.0  # rows 0..9: the values of attributes 0..4, group A
    torch.testing.assert_close(recipe.d_loss(D, G, batch, 1, FP32)[0], before_d)
    torch.testing.assert_close(recipe.g_loss(G, D, batch, 1, FP32)[0], before_g)
    with torch.no_grad():
        D.conv3.weight[10:] += 1.0
    assert abs(recipe.d_loss(D, G, batch, 1, FP32)[0] - before_d) > 1e-3


def head_logits(G, D, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The conditional head's (B, k) logits, computed by hand: real faces at their own values and at the wrong ones,
    and G's fakes at their targets."""
    with torch.no_grad():
        real = D(batch.x, with_cond=True)[2]
        fake = D(G(batch.x, batch.c_trg), with_cond=True)[2]
    right = losses.value_logits(real, batch.label_org, batch.cls_slice)
    wrong = losses.value_logits(real, 1 - batch.label_org, batch.cls_slice)
    return right, wrong, losses.value_logits(fake, batch.label_trg, batch.cls_slice)


def test_the_conditional_d_loss_is_matching_aware():
    recipe, G, D, batch = conditional_batch()
    _, logs = recipe.d_loss(D, G, batch, 1, FP32)
    right, wrong, fake_at_target = head_logits(G, D, batch)
    expected = losses.conditional_loss(right, True) + 0.5 * (
        losses.conditional_loss(wrong, False) + losses.conditional_loss(fake_at_target, False)
    )
    torch.testing.assert_close(logs["D/cond"], expected)
    torch.testing.assert_close(logs["D/cond_real_wrong"], wrong.mean())


def test_the_changed_attribute_weight_scales_only_the_fake_terms_of_the_attributes_a_target_changes():
    recipe, G, D, batch = conditional_batch(cond_changed_weight=4.0)
    changed = (batch.label_trg >= 0.5) != (batch.label_org >= 0.5)
    assert changed.any() and not changed.all()  # the shuffle changes some attributes and keeps others
    _, logs = recipe.d_loss(D, G, batch, 1, FP32)
    _, g_logs = recipe.g_loss(G, D, batch, 1, FP32)
    right, wrong, fake_at_target = head_logits(G, D, batch)
    B = fake_at_target.size(0)
    weight = torch.where(changed, 4.0, 1.0)
    by_hand = (torch.nn.functional.softplus(fake_at_target) * weight).sum() / B  # BCE towards fake, weighted
    expected = losses.conditional_loss(right, True) + 0.5 * (losses.conditional_loss(wrong, False) + by_hand)
    torch.testing.assert_close(logs["D/cond"], expected)
    torch.testing.assert_close(g_logs["G/cond"], (torch.nn.functional.softplus(-fake_at_target) * weight).sum() / B)
    _, plain = conditional_batch()[0].d_loss(D, G, batch, 1, FP32)
    assert plain["D/cond"] < logs["D/cond"]  # weight 1 (the default): the unweighted loss, pinned above


def test_g_loss_of_the_conditional_recipe_has_no_classification_term():
    recipe, G, D, batch = conditional_batch()
    before, logs = recipe.g_loss(G, D, batch, 1, FP32)
    assert "G/cls" not in logs and "G/cond" in logs
    with torch.no_grad():
        D.conv2.weight.normal_()  # the classification head: G's loss does not read it
    torch.testing.assert_close(recipe.g_loss(G, D, batch, 1, FP32)[0], before)
    v2 = recipe_for(tiny_config(recipe="v2"))
    assert "G/cls" in v2.g_loss(G, D, batch, 1, FP32)[1]  # the control: the paper's term is there in v2


def test_d_warmup_holds_g_back():
    recipe = recipe_for(tiny_config(recipe="conditional", d_warmup=3))
    assert [recipe.trains_g(s) for s in range(5)] == [False, False, False, True, True]


def test_a_file_without_the_conditional_head_seeds_a_conditional_run(tmp_path):
    path = tiny_stargan_weights(tmp_path / "plain.safetensors")
    _, D_plain = tiny_stargan()
    G, D = Generator(CONDITIONAL), Discriminator(CONDITIONAL)
    fresh_head = D.conv3.weight.clone()
    init_from_weights(str(path), CONDITIONAL, G, D)
    assert torch.equal(D.main[0].weight, D_plain.main[0].weight) and torch.equal(D.conv3.weight, fresh_head)


class Killed(BaseException):
    """Stands in for SIGKILL: no handler runs, nothing is saved; what is on disk is the last periodic checkpoint."""


def assert_killed_run_resumes_bit_identical(tmp_path, monkeypatch, **options) -> None:
    """A run of `options` killed three times mid-interval, then resumed, ends with the uninterrupted run's G, D and
    moving average, bit for bit."""
    options.update(save_every=2, num_iters=8, out="")
    full = tiny_train_config(tmp_path, run_dir=str(tmp_path / "full"), **options)
    train_stargan(full)
    part = tiny_train_config(tmp_path, run_dir=str(tmp_path / "part"), **options)
    real_draw_batch = stargan_loop.draw_batch
    for kill_at in (3, 5, 7):  # mid-interval: the steps since the last checkpoint are lost and redone

        def draw_batch_then_kill(*args, kill_at=kill_at):
            if args[3] == kill_at:  # draw_batch(data, schema, cfg, step, rank)
                raise Killed
            return real_draw_batch(*args)

        monkeypatch.setattr(stargan_loop, "draw_batch", draw_batch_then_kill)
        with pytest.raises(Killed):
            train_stargan(part)
        assert load_resume(part.run_dir)["step"] == kill_at - 1
    monkeypatch.undo()
    train_stargan(part)
    a, b = load_resume(full.run_dir), load_resume(part.run_dir)
    assert a["step"] == b["step"] == 8
    for key in ("G", "D", "G_ema"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), f"{key}.{name}"


def test_a_conditional_run_killed_three_times_resumes_bit_identical(tmp_path, monkeypatch):
    assert_killed_run_resumes_bit_identical(
        tmp_path, monkeypatch, recipe="conditional", d_warmup=2, augment="translation,cutout"
    )


def test_conditional_weights_load_in_the_app(tmp_path):
    path = tiny_stargan_weights(tmp_path / "cond.safetensors", CONDITIONAL)
    editor = FaceEditor.from_pretrained(path)
    assert editor.config.cond_head and editor.D.conv3 is not None


def test_a_run_from_trained_weights_keeps_its_moving_average_near_them(tmp_path):
    """The served G of a fine-tune starts as the file's G and moves by (1 - ema_decay) per G step, with no warm-up."""
    init = tiny_stargan_weights(tmp_path / "init.safetensors")
    cfg = tiny_train_config(tmp_path, init_weights=str(init), num_iters=4, n_critic=1, ema_decay=0.999, out="")
    train_stargan(cfg)
    state = load_resume(cfg.run_dir)
    start = FaceEditor.from_pretrained(init).G.state_dict()
    for name, ema in state["G_ema"].items():
        if ema.is_floating_point():
            raw_move = (state["G"][name] - start[name]).abs().max()
            assert (ema - start[name]).abs().max() <= 0.01 * raw_move + 1e-7, name


def test_the_recipe_names_are_the_options_choices_and_the_cli_offers_only_them(capsys):
    from stargan_app.cli import build_parser
    from stargan_app.training.options import RECIPE_NAMES
    from stargan_app.training.recipes import RECIPES

    assert tuple(RECIPES) == RECIPE_NAMES
    for flag, value in (("--recipe", "wgan"), ("--output", "masked"), ("--upsample", "resize")):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", "stargan", flag, value])
        assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="output 'masked' was removed"):
        tiny_config(output="masked")
