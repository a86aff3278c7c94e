"""Where a StarGAN run starts when not from scratch: a weights file (fine-tune) or a campaign's training state."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from stargan_app.checkpoint import load_weights, read_tensors
from stargan_app.config import StarGANConfig
from stargan_app.errors import WeightsError
from stargan_app.models import Discriminator, Generator
from stargan_app.training.export import TRAINING_G
from stargan_app.training.lineage import stages_of
from stargan_app.training.resume import GANState

COND_HEAD = "conv3."  # D's conditional head: new when a file without it seeds a conditional run


def seeds_residual(source: StarGANConfig, run: StarGANConfig) -> bool:
    """Whether a file of config `source` warm-starts this run's residual G: an image G of the same shape otherwise."""
    as_residual = dataclasses.replace(source, output="residual")
    return source.output == "image" and run.output == "residual" and as_residual == run


def zero_last_conv(G: Generator) -> None:
    """A residual G seeded from an image G keeps the whole trunk; its last conv starts at zero, so G starts at the
    identity with everything the trunk has learnt."""
    with torch.no_grad():
        G.main[-1].weight.zero_()


def load_discriminator(D: nn.Module, source: nn.Module) -> None:
    """D's weights from `source`, a discriminator of the same trunk; a conditional head `source` lacks keeps its fresh
    initialisation (D learns it in the run's warm-up)."""
    missing, unexpected = D.load_state_dict(source.state_dict(), strict=False)
    if unexpected or any(not k.startswith(COND_HEAD) for k in missing):
        raise RuntimeError(f"discriminator weights do not fit: missing {missing}, unexpected {unexpected}")


def init_from_weights(path: str, mcfg: StarGANConfig, G: Generator, D: Discriminator) -> dict:
    """Copy G and D from a stargan weights file of the same architecture; returns provenance for the run's info.

    An "image" G seeds a "residual" G of the same shape (see zero_last_conv). "deconv" and "deconv_blur" share their
    weights. A D without the conditional head seeds one with it (the head starts fresh).
    """
    loaded = load_weights(path, kind="stargan")
    to_residual = loaded.config.output == "image" and mcfg.output == "residual"
    as_this_run = dataclasses.replace(loaded.config, upsample=mcfg.upsample, cond_head=mcfg.cond_head)
    if as_this_run != mcfg and not seeds_residual(as_this_run, mcfg):
        raise WeightsError(f"--init-weights {path} was trained with {loaded.config}, not this run's {mcfg}.")
    if "D" not in loaded.modules:
        raise WeightsError(f"--init-weights {path} has no discriminator to continue training from.")
    G.load_state_dict(loaded.modules["G"].state_dict())  # load_weights already gives fp32 modules
    if to_residual:
        zero_last_conv(G)
    load_discriminator(D, loaded.modules["D"])
    return {
        **({"init_ema_ramp_from": 0} if to_residual else {}),
        "init_weights": str(path),
        "init_steps": int(loaded.info.get("steps", 0)),
        "init_train_seconds": float(loaded.info.get("train_seconds", 0.0)),
        "init_output": loaded.config.output,
        "init_stages": stages_of(loaded.info),
    }


def continue_from_state(path: str, mcfg: StarGANConfig, gan: GANState) -> dict:
    """Load a training-state file (export --training-state) into the run: G from its raw G, the moving average
    from its served G, D; returns the provenance that makes the run continue its step count and totals."""
    loaded = load_weights(path, kind="stargan")
    raw_g = read_tensors(path, TRAINING_G)
    to_residual = seeds_residual(loaded.config, mcfg)
    if loaded.config != mcfg and not to_residual:
        raise WeightsError(f"--continue-from {path} was trained with {loaded.config}, not this run's {mcfg}.")
    if not raw_g or "D" not in loaded.modules:
        raise WeightsError(
            f"--continue-from {path} is not a training state (no raw G or D): write one with export --training-state."
        )
    gan.G.load_state_dict(raw_g)
    load_discriminator(gan.D, loaded.modules["D"])
    step = int(loaded.info.get("steps", 0))
    if to_residual:
        zero_last_conv(gan.G)
    if gan.G_ema is not None:  # a residual G's moving average starts at the identity too, and ramps (update_ema)
        gan.G_ema.load_state_dict(gan.G.state_dict() if to_residual else loaded.modules["G"].state_dict())
    return {
        **({"init_output": "image", "init_ema_ramp_from": step} if to_residual else {}),
        "init_continued_from": str(path),
        "init_campaign_step": step,
        "init_campaign_seconds": float(loaded.info.get("train_seconds", 0.0)),
        "init_stages": stages_of(loaded.info),  # this run adds a stage of its own after them
    }
