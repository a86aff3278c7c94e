"""train_guide(cfg): the robust attribute classifier G's attribute term reads, trained with PGD-L2 on training ids.

A classifier trained on worst-case inputs inside an L2 ball has perceptually aligned input gradients (Santurkar et
al. 2019): the cheapest way to raise its score is to draw the attribute, not a high-frequency texture.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from stargan_app.checkpoint import save_weights
from stargan_app.config import GROUP_A, GROUP_B, GuideConfig
from stargan_app.data.celeba import load_face_crops, load_training_faces
from stargan_app.imaging import to_model_range
from stargan_app.labels import present
from stargan_app.models import AttributeGuide
from stargan_app.training.adversarial import attribute_bce, pgd_l2
from stargan_app.training.devices import Autocast, autocast_for, hardware, setup, teardown
from stargan_app.training.options import GuideTrainConfig
from stargan_app.training.resume import rng_state, set_rng_state
from stargan_app.training.runs import Driver, step_generator, write_run_config


@dataclass(eq=False)
class GuideState:
    """What a guide run trains and its resume checkpoints hold (the Driver's `gan`)."""

    model_config: GuideConfig
    model: AttributeGuide
    opt: torch.optim.Optimizer
    info: dict[str, Any] = field(default_factory=dict)

    def state_dict(self, step: int, train_seconds: float) -> dict[str, Any]:
        return {
            "kind": "guide",
            "step": step,
            "guide": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "rng": rng_state(),
            "model_config": asdict(self.model_config),
            "train_seconds": train_seconds,
            "info": self.info,
        }

    def load_state_dict(self, state: dict[str, Any]) -> float:
        self.model.load_state_dict(state["guide"])
        self.opt.load_state_dict(state["opt"])
        set_rng_state(state["rng"])
        return float(state.get("train_seconds", 0.0))


def balanced_pos_weight(labels: torch.Tensor) -> torch.Tensor:
    """Per attribute, negatives over positives: a rare attribute (a hat: 5% of faces) weighs as much as a common one."""
    pos = labels.float().mean(0).clamp(1e-3, 1 - 1e-3)
    return (1 - pos) / pos


def radius_at(cfg: GuideTrainConfig, step: int, steps_per_epoch: int) -> float:
    """The PGD radius of a step: a linear ramp from 0 over the first radius_warmup epochs, then cfg.radius."""
    ramp = cfg.radius_warmup * steps_per_epoch
    return cfg.radius if ramp <= 0 else cfg.radius * min(1.0, step / ramp)


def batch_rows(cfg: GuideTrainConfig, step: int, n: int) -> torch.Tensor:
    """The training rows of a step: each epoch a fresh permutation of the seed and epoch, so resuming redraws them."""
    steps_per_epoch = n // cfg.batch_size
    epoch, i = divmod(step, steps_per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))
    return order[i * cfg.batch_size : (i + 1) * cfg.batch_size]


def guide_step(
    state: GuideState,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: GuideTrainConfig,
    step: int,
    radius: float,
    pos_weight: torch.Tensor,
    precision: Autocast,
) -> dict[str, torch.Tensor]:
    """One adversarial-training step: PGD-L2 examples of the batch at `radius`, then Adam on their loss."""
    gen = step_generator(cfg.seed, 0, step)
    rows = batch_rows(cfg, step, len(images))
    x = to_model_range(images[rows])
    y = labels[rows].to(x.device)
    x = torch.where((torch.rand(len(rows), 1, 1, 1, generator=gen) < 0.5).to(x.device), x.flip(3), x)
    model = state.model.train()
    with precision:
        x_adv = pgd_l2(model, x, y, radius, cfg.pgd_steps, gen, pos_weight)
        logits = model(x_adv)
        loss = attribute_bce(logits, y, pos_weight)
    state.opt.zero_grad(set_to_none=True)
    loss.backward()
    state.opt.step()
    with torch.no_grad(), precision:
        clean = model.eval()(x)
    model.train()
    logs = {"loss/adv": loss.detach(), "radius": torch.tensor(radius)}
    truth = present(y)
    for j, name in enumerate(state.model_config.attributes):
        logs[f"acc_clean/{name}"] = ((clean[:, j] > 0) == truth[:, j]).float().mean()
        logs[f"acc_adv/{name}"] = ((logits.detach()[:, j] > 0) == truth[:, j]).float().mean()
    return logs


def train_guide(cfg: GuideTrainConfig) -> Path:
    """Train (or continue the run in cfg.run_dir), then write the guide to cfg.out. Returns the weights path."""
    from stargan_app.evaluation.guide import held_out_figures, print_figures  # what `eval guide` prints too

    dist = setup(cfg.device)
    run_dir = Path(cfg.run_dir)
    mcfg = GuideConfig(image_size=cfg.image_size, width=cfg.width)
    torch.manual_seed(cfg.seed)
    split = load_training_faces(cfg.data_dir, (GROUP_A, GROUP_B), cfg.image_size, cfg.test_size, cfg.max_images)
    write_run_config(run_dir, cfg)
    dev = dist.device
    precision = autocast_for(dev, cfg.amp)
    images, labels = split.images.to(dev), split.labels.to(dev)
    steps_per_epoch = len(images) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(images)} training images is fewer than one batch of {cfg.batch_size}")
    model = AttributeGuide(mcfg).to(dev)
    state = GuideState(
        mcfg,
        model,
        torch.optim.Adam(model.parameters(), cfg.lr, (cfg.beta1, cfg.beta2)),
        info={
            "data": f"CelebA layout at {cfg.data_dir}: {len(images)} training images, last {cfg.test_size} ids "
            f"held out, {cfg.image_size}x{cfg.image_size}",
            "hardware": hardware(dist),
            "adversarial_training": f"PGD-L2, radius {cfg.radius} (model range), {cfg.pgd_steps} steps, radius "
            f"ramped over {cfg.radius_warmup} epochs",
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "precision": "bf16 autocast" if precision.enabled else "fp32",
        },
    )
    pos_weight = balanced_pos_weight(labels)
    num_steps = cfg.epochs * steps_per_epoch
    driver = Driver(cfg, dist, state, num_steps, None, "guide")  # type: ignore[arg-type]
    start = driver.resume()

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        radius = radius_at(cfg, step, steps_per_epoch)
        return guide_step(state, images, labels, cfg, step, radius, pos_weight, precision)

    try:
        driver.run(start, step_fn)
    finally:
        teardown()
    held = load_face_crops(split.folder, split.test_files, cfg.image_size)
    figures = held_out_figures(model, mcfg.attributes, held, split.test_labels[: len(held)])
    print_figures(figures)
    info = {**state.info, **figures, "steps": num_steps, "train_seconds": round(driver.train_seconds(), 1)}
    info["held_out"] = f"ids of the last {cfg.test_size} files, recall/specificity at probability 0.5"
    out = save_weights(cfg.out, "guide", mcfg, {"guide": model}, info=info, fp16=cfg.fp16_export)
    print(f"wrote {out}")
    return out
