"""The campaign's step computes G's edit once (D trains on it detached, G's loss keeps its graph, G is unchanged in
between): it trains the same recipe as two separate passes, to float rounding in fp32 and within bf16 rounding under
autocast (bit-exact resume of the one-pass step: the kill tests of test_recipes, test_residual, test_guide); a run's
provenance names its precision, process layout and data set."""

import dataclasses

import torch
from conftest import TINY_STARGAN, tiny_guide, tiny_stargan
from test_augment import FP32, tiny_config, tiny_data
from test_training import tiny_train_config

from stargan_app.inference import FaceEditor
from stargan_app.training.batches import draw_batch
from stargan_app.training.devices import Autocast
from stargan_app.training.recipes import recipe_for
from stargan_app.training.runs import frozen, new_gan_state, optimizer_step
from stargan_app.training.stargan_loop import train_stargan, train_step

RESIDUAL_CONDITIONAL = dataclasses.replace(TINY_STARGAN, cond_head=True, output="residual")
BF16 = Autocast(torch.device("cpu"), True)  # forced on: bf16 rounding is what is compared, not this CPU's speed


def two_pass_step(gan, g_train, d_train, batch, recipe, step, precision) -> dict[str, torch.Tensor]:
    """The step as it was before: D's fakes from a pass of G without a graph, G's loss from a pass of its own."""
    d_loss, logs = recipe.d_loss(d_train, gan.G, batch, step, precision)
    optimizer_step(gan.opt_d, d_loss)
    with frozen(gan.D):
        g_loss, g_logs = recipe.g_loss(g_train, gan.D, batch, step, precision)
        optimizer_step(gan.opt_g, g_loss)
    return {**logs, **g_logs}


def campaign_steps(step_fn, precision: Autocast, steps: int = 4) -> tuple[list[dict[str, float]], list[torch.Tensor]]:
    """Each step's losses and G's final weights: the campaign's recipe (conditional, residual G, augmentation,
    identity term, changed-attribute weight, a frozen guide with its keep term) on the tiny model."""
    cfg = tiny_config(
        recipe="conditional",
        output="residual",
        augment="translation,cutout",
        lambda_id=10.0,
        cond_changed_weight=4.0,
        lambda_guide=3.0,
        guide_keep=1.0,
        ema_decay=0.0,
    )
    G, D = tiny_stargan(RESIDUAL_CONDITIONAL)
    with torch.no_grad():
        G.main[-1].weight.normal_(0, 0.05)  # a residual G starts at the identity: move it off, so fakes differ
    gan = new_gan_state("stargan", RESIDUAL_CONDITIONAL, G, D, cfg, cfg.g_lr, cfg.d_lr, {})
    recipe, data = recipe_for(cfg, tiny_guide().requires_grad_(False)), tiny_data()
    history = []
    for step in range(steps):  # step 0 takes the lazy R1 term, the others do not
        batch = draw_batch(data, RESIDUAL_CONDITIONAL.labels, cfg, step, 0)
        logs = step_fn(gan, G, D, batch, recipe, step, precision)
        history.append({k: float(v.detach()) for k, v in logs.items()})
    return history, [p.detach().clone() for p in G.parameters()]


def test_the_one_pass_step_trains_what_the_two_pass_step_trained_to_float_rounding():
    # not bit for bit: oneDNN's forward with a graph (training kind) and without (inference kind) may round apart
    fused, fused_g = campaign_steps(train_step, FP32)
    reference, reference_g = campaign_steps(two_pass_step, FP32)
    for step_fused, step_reference in zip(fused, reference):
        assert step_fused.keys() == step_reference.keys()
        for name, value in step_reference.items():
            assert abs(step_fused[name] - value) <= 1e-5 * (1 + abs(value)), (name, step_fused[name], value)
    for a, b in zip(fused_g, reference_g):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_the_bf16_step_matches_the_fp32_step_within_bf16_rounding():
    bf16, _ = campaign_steps(train_step, BF16)
    fp32, _ = campaign_steps(two_pass_step, FP32)
    assert bf16 != fp32  # autocast did run in bf16
    for step_bf16, step_fp32 in zip(bf16, fp32):
        assert step_bf16.keys() == step_fp32.keys()
        for name, value in step_fp32.items():
            assert abs(step_bf16[name] - value) <= 0.02 + 0.03 * abs(value), (name, step_bf16[name], value)


def test_the_runs_provenance_names_precision_processes_threads_and_the_data_set_not_a_path(tmp_path):
    cfg = tiny_train_config(tmp_path, num_iters=2, save_every=2, sample_every=0)
    train_stargan(cfg)
    info = FaceEditor.from_pretrained(cfg.out).info
    stage = info["stages"][-1]
    assert stage["processes"] == 1 and stage["threads"] == torch.get_num_threads()
    assert stage["precision"] in ("fp32", "bf16 autocast") and "cores" in stage["hardware"]
    assert str(tmp_path) not in info["data"] and info["data"].startswith("CelebA 'celeba'")
    assert stage["data"] == info["data"]
