"""train_cgan(cfg): conditional MLP GAN on MNIST or Fashion-MNIST with BCE losses."""

from __future__ import annotations

import dataclasses
from functools import lru_cache, partial
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from stargan_app.config import DIGIT_CLASSES, FASHION_CLASSES, CGANConfig
from stargan_app.data.idx import load_idx_dataset
from stargan_app.imaging import make_grid, tensors_to_pils, to_model_range
from stargan_app.models import CGANDiscriminator, CGANGenerator
from stargan_app.runtime import module_device
from stargan_app.training import losses
from stargan_app.training.devices import Dist, hardware, setup
from stargan_app.training.options import CGANTrainConfig
from stargan_app.training.resume import GANState
from stargan_app.training.runs import (
    Driver,
    frozen,
    new_gan_state,
    optimizer_step,
    train_and_export,
    update_ema,
    write_run_config,
)

CLASSES = {"mnist": DIGIT_CLASSES, "fashion": FASHION_CLASSES}
SAMPLES_PER_CLASS = 8  # columns of the sample grid


def resolved(cfg: CGANTrainConfig) -> CGANTrainConfig:
    """Fill the per-dataset defaults of run_dir and out."""
    return dataclasses.replace(
        cfg,
        run_dir=cfg.run_dir or f"runs/cgan_{cfg.dataset}",
        out=cfg.out or f"weights/cgan_{cfg.dataset}.safetensors",
    )


@lru_cache(maxsize=1)
def epoch_order(seed: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The epoch's shuffle, a function of (seed, epoch) only: resuming mid-epoch sees the same order. Kept on the
    training device, so a step's batch indices are a slice there (no host-to-device copy per step)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).to(device)


def draw_batch(
    images: torch.Tensor, labels: torch.Tensor, cfg: CGANTrainConfig, dist: Dist, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's slice of step `step`: (images (B, 1, 28, 28) in [-1, 1], int64 labels)."""
    steps_per_epoch = len(images) // (cfg.batch_size * dist.world)
    epoch, i = divmod(step, steps_per_epoch)
    start = (i * dist.world + dist.rank) * cfg.batch_size
    idx = epoch_order(cfg.seed, epoch, len(images), images.device)[start : start + cfg.batch_size]
    return to_model_range(images[idx]).unsqueeze(1), labels[idx]


def compute_d_loss(
    D: nn.Module, real: torch.Tensor, y: torch.Tensor, fake: torch.Tensor, fake_y: torch.Tensor
) -> torch.Tensor:
    """Mean of the real and fake BCE terms (the fake batch is detached: D's step leaves G alone)."""
    return (losses.bce_real(D(real, y)) + losses.bce_fake(D(fake.detach(), fake_y))) / 2


def compute_g_loss(D: nn.Module, fake: torch.Tensor, fake_y: torch.Tensor) -> torch.Tensor:
    """Non-saturating: G wants D to call its samples real."""
    return losses.bce_real(D(fake, fake_y))


def train_step(
    gan: GANState,
    g_train: nn.Module,
    d_train: nn.Module,
    real: torch.Tensor,
    y: torch.Tensor,
    cfg: CGANTrainConfig,
    step: int,
) -> dict[str, torch.Tensor]:
    """One D step and one G step on the same fake batch (random classes), then the EMA of G."""
    n, classes = real.size(0), len(gan.model_config.classes)
    z = torch.randn(n, gan.model_config.noise_dim, device=real.device)
    fake_y = torch.randint(0, classes, (n,), device=real.device)
    fake = g_train(z, fake_y)
    d_loss = compute_d_loss(d_train, real, y, fake, fake_y)
    optimizer_step(gan.opt_d, d_loss)
    with frozen(gan.D):
        g_loss = compute_g_loss(gan.D, fake, fake_y)
        optimizer_step(gan.opt_g, g_loss)
    if gan.G_ema is not None:
        update_ema(gan.G_ema, gan.G, cfg.ema_decay, step)
    return {"D": d_loss, "G": g_loss}


def train_cgan(cfg: CGANTrainConfig) -> Path:
    """Train (or continue the run in its run dir), then export G and D. Returns the run dir."""
    cfg = resolved(cfg)
    dist = setup(cfg.device)
    run_dir = Path(cfg.run_dir)
    mcfg = CGANConfig(
        classes=CLASSES[cfg.dataset], noise_dim=cfg.noise_dim, dataset=cfg.dataset, d_projection=cfg.d_projection
    )
    images, labels = load_idx_dataset(cfg.dataset, cfg.data_dir)
    if dist.is_main:
        write_run_config(run_dir, cfg)
        print(f"{len(images)} {cfg.dataset} training images")
    dev = dist.device
    images, labels = images.to(dev), labels.to(dev)
    torch.manual_seed(cfg.seed + dist.rank)
    G, D = CGANGenerator(mcfg).to(dev), CGANDiscriminator(mcfg).to(dev)
    info = {
        "data": f"{cfg.dataset} training split, {len(images)} images, 28x28",
        "hardware": hardware(dist),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size * dist.world,
        "ema_decay": cfg.ema_decay,
    }
    gan = new_gan_state("cgan", mcfg, G, D, cfg, cfg.lr, cfg.lr, info)
    g_train = DistributedDataParallel(G) if dist.world > 1 else G
    d_train = DistributedDataParallel(D) if dist.world > 1 else D
    fixed_z = torch.randn(
        SAMPLES_PER_CLASS * len(mcfg.classes), mcfg.noise_dim, generator=torch.Generator().manual_seed(0)
    )
    steps = cfg.epochs * (len(images) // (cfg.batch_size * dist.world))
    sample_fn = partial(save_sample_grid, gan, run_dir, fixed_z)
    driver = Driver(cfg, dist, gan, steps, sample_fn, f"cgan-{cfg.dataset}")
    start = driver.resume()

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        return train_step(gan, g_train, d_train, *draw_batch(images, labels, cfg, dist, step), cfg, step)

    return train_and_export(driver, start, step_fn, cfg.out, cfg.fp16_export)


def save_sample_grid(gan: GANState, run_dir: Path, fixed_z: torch.Tensor, step: int) -> None:
    """runs/<run>/samples/step_<step>.png: a row per class, the same noise every time."""
    shown = gan.G_ema if gan.G_ema is not None else gan.G
    dev = module_device(shown)
    shown.eval()
    with torch.no_grad():
        y = torch.arange(len(gan.model_config.classes)).repeat_interleave(SAMPLES_PER_CLASS)
        imgs = shown(fixed_z.to(dev), y.to(dev)).cpu()
    gan.G.train()
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    make_grid(tensors_to_pils(imgs), ncols=SAMPLES_PER_CLASS).save(run_dir / "samples" / f"step_{step:08d}.png")
