"""Residual output (G = clamp(x + Δ, -1, 1)): the identity at a zero last conv, its range, the warm start from an
image-output state (trunk kept, last conv zeroed, the moving average restarted and ramped) and exact resume."""

import dataclasses

import pytest
import torch
from conftest import TINY_STARGAN, tiny_stargan_weights
from test_recipes import assert_killed_run_resumes_bit_identical
from test_training import tiny_train_config

from stargan_app.checkpoint import read_tensors
from stargan_app.inference import FaceEditor
from stargan_app.models import Discriminator, Generator
from stargan_app.training.export import TRAINING_G, export_run
from stargan_app.training.resume import load_resume
from stargan_app.training.stargan_loop import train_stargan
from stargan_app.training.warm_start import init_from_weights

RESIDUAL = dataclasses.replace(TINY_STARGAN, output="residual")


def labels(n: int) -> torch.Tensor:
    return torch.randint(0, 2, (n, RESIDUAL.labels.c_dim)).float()


def test_a_residual_g_with_a_zero_last_conv_returns_its_input_exactly():
    G = Generator(RESIDUAL)
    torch.nn.init.zeros_(G.main[-1].weight)
    x = torch.rand(3, 3, RESIDUAL.image_size, RESIDUAL.image_size) * 2 - 1
    assert torch.equal(G(x, labels(3)), x)


def test_the_output_stays_in_the_image_range_however_large_the_change():
    torch.manual_seed(0)
    G = Generator(RESIDUAL)
    with torch.no_grad():
        G.main[-1].weight.normal_(0, 10.0)  # a change of several units per pixel
    x = torch.rand(4, 3, RESIDUAL.image_size, RESIDUAL.image_size) * 2 - 1
    out = G(x, labels(4))
    assert out.min() >= -1 and out.max() <= 1 and (out.abs() == 1).float().mean() > 0.2


def image_training_state(tmp_path) -> str:
    """A tiny image-output conditional run of 1 step, exported as a training state (what the campaign commits)."""
    cfg = tiny_train_config(tmp_path, run_dir=str(tmp_path / "image"), out="", recipe="conditional", num_iters=1)
    train_stargan(dataclasses.replace(cfg, save_every=1, sample_every=0))
    return str(export_run(cfg.run_dir, tmp_path / "state.safetensors", fp16=False, training_state=True))


def test_a_warm_start_from_an_image_state_keeps_the_trunk_zeroes_the_last_conv_and_ramps_the_average(tmp_path):
    state = image_training_state(tmp_path)
    cfg = tiny_train_config(
        tmp_path, run_dir=str(tmp_path / "residual"), out="", recipe="conditional", output="residual"
    )
    train_stargan(dataclasses.replace(cfg, continue_from=state, num_iters=3, g_lr=0.0, d_lr=0.0, save_every=1))
    resumed, image_g = load_resume(cfg.run_dir), read_tensors(state, TRAINING_G)
    last = f"main.{len(Generator(RESIDUAL).main) - 1}.weight"
    assert resumed["step"] == 3 and resumed["info"]["init_ema_ramp_from"] == 1
    for name, t in image_g.items():  # learning rate 0: what the warm start made came through unchanged
        expected = torch.zeros_like(t) if name == last else t
        assert torch.equal(resumed["G"][name], expected), name
        assert torch.equal(resumed["G_ema"][name], expected), name  # the average starts at the identity too
    stage = FaceEditor.from_pretrained(export_run(cfg.run_dir, tmp_path / "r.safetensors")).info["stages"][-1]
    assert stage["output"] == "residual"


def test_the_moving_average_of_a_warm_residual_follows_g_from_the_first_steps(tmp_path):
    state = image_training_state(tmp_path)
    cfg = tiny_train_config(
        tmp_path, run_dir=str(tmp_path / "residual"), out="", recipe="conditional", output="residual", n_critic=1
    )
    train_stargan(dataclasses.replace(cfg, continue_from=state, num_iters=4, ema_decay=0.999, save_every=1))
    last = f"main.{len(Generator(RESIDUAL).main) - 1}.weight"
    G, ema = (load_resume(cfg.run_dir)[key][last] for key in ("G", "G_ema"))
    # decay (1 + s) / (10 + s) from the warm start: after 2 G steps the average holds most of G's change, where a
    # fixed 0.999 would hold 0.2 % of it
    assert G.abs().sum() > 0 and (ema - G).abs().sum() < 0.5 * G.abs().sum()


def test_a_residual_run_killed_three_times_resumes_bit_identical(tmp_path, monkeypatch):
    assert_killed_run_resumes_bit_identical(
        tmp_path, monkeypatch, recipe="conditional", output="residual", continue_from=image_training_state(tmp_path)
    )


@pytest.mark.parametrize("output", ["image", "residual"])
def test_files_of_each_output_load_and_an_image_file_seeds_a_residual_run(tmp_path, output):
    cfg = dataclasses.replace(TINY_STARGAN, output=output)
    path = tiny_stargan_weights(tmp_path / f"{output}.safetensors", cfg)
    editor = FaceEditor.from_pretrained(path, regions=False)
    assert editor.config.output == output
    x = torch.rand(2, 3, cfg.image_size, cfg.image_size) * 2 - 1
    assert editor.translate_crops(x, labels(2)).shape == x.shape
    if output == "image":
        G, D = Generator(RESIDUAL), Discriminator(RESIDUAL)
        info = init_from_weights(str(path), RESIDUAL, G, D)
        assert info["init_ema_ramp_from"] == 0 and not G.main[-1].weight.any()
        assert torch.equal(G(x, labels(2)), x)
