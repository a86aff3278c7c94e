"""train_cgan(cfg): conditional MLP GAN on MNIST or Fashion-MNIST with BCE losses."""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from stargan_app.config import DIGIT_CLASSES, FASHION_CLASSES, CGANConfig, CGANTrainConfig
from stargan_app.models import CGANDiscriminator, CGANGenerator
from stargan_app.training import losses
from stargan_app.training.data import load_idx_dataset
from stargan_app.training.runs import (
    Driver,
    hardware,
    restore_training_state,
    setup,
    teardown,
    training_state,
    update_ema,
    write_run_config,
)

CLASSES = {"mnist": DIGIT_CLASSES, "fashion": FASHION_CLASSES}


def resolved(cfg: CGANTrainConfig) -> CGANTrainConfig:
    """Fill the per-dataset defaults of run_dir and out."""
    if cfg.dataset not in CLASSES:
        raise ValueError(f"--dataset must be one of {sorted(CLASSES)}, not {cfg.dataset!r}")
    return dataclasses.replace(
        cfg,
        run_dir=cfg.run_dir or f"runs/cgan_{cfg.dataset}",
        out=cfg.out or f"weights/cgan_{cfg.dataset}.safetensors",
    )


def train_cgan(cfg: CGANTrainConfig) -> Path:
    """Train (or continue the run in its run dir), then export G and D. Returns the run dir."""
    cfg = resolved(cfg)
    d = setup(cfg.device)
    run_dir = Path(cfg.run_dir)
    mcfg = CGANConfig(classes=CLASSES[cfg.dataset], noise_dim=cfg.noise_dim, dataset=cfg.dataset,
                      d_projection=cfg.d_projection)
    images, labels = load_idx_dataset(cfg.dataset, cfg.data_dir)
    if d.is_main:
        write_run_config(run_dir, cfg)
        print(f"{len(images)} {cfg.dataset} training images")
    dev = d.device
    images = images.to(dev)
    labels = labels.to(dev)
    torch.manual_seed(cfg.seed + d.rank)
    G, D = CGANGenerator(mcfg).to(dev), CGANDiscriminator(mcfg).to(dev)
    G_ema = copy.deepcopy(G).requires_grad_(False).eval() if cfg.ema_decay else None
    fused = dev.type == "cuda" or None
    opt_g = torch.optim.Adam(G.parameters(), cfg.lr, (cfg.beta1, cfg.beta2), fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), cfg.lr, (cfg.beta1, cfg.beta2), fused=fused)
    g_train = DistributedDataParallel(G) if d.world > 1 else G
    d_train = DistributedDataParallel(D) if d.world > 1 else D
    steps_per_epoch = len(images) // (cfg.batch_size * d.world)
    train_seconds = [0.0]
    started = time.perf_counter()

    def state(step: int) -> dict:
        elapsed = train_seconds[0] + time.perf_counter() - started
        return training_state("cgan", step, G, D, opt_g, opt_d, mcfg, elapsed, {
            "data": f"{cfg.dataset} training split, {len(images)} images, 28x28",
            "hardware": hardware(d),
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size * d.world,
            "ema_decay": cfg.ema_decay,
        }, G_ema=G_ema)

    def restore(s: dict) -> None:
        train_seconds[0] = restore_training_state(s, G, D, opt_g, opt_d, G_ema)

    order: dict[int, torch.Tensor] = {}

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Epoch-wise shuffles that depend only on (seed, epoch): resuming mid-epoch sees the same order."""
        epoch, i = divmod(step, steps_per_epoch)
        if epoch not in order:
            order.clear()
            gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
            order[epoch] = torch.randperm(len(images), generator=gen).to(dev)
        start = (i * d.world + d.rank) * cfg.batch_size
        idx = order[epoch][start : start + cfg.batch_size]
        return images[idx].float().div_(127.5).sub_(1.0).unsqueeze(1), labels[idx]

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        real, y = batch(step)
        n = real.size(0)
        z = torch.randn(n, mcfg.noise_dim, device=dev)
        fake_y = torch.randint(0, len(mcfg.classes), (n,), device=dev)
        fake = g_train(z, fake_y)
        d_loss = losses.bce_real(d_train(real, y)) + losses.bce_fake(d_train(fake.detach(), fake_y))
        opt_d.zero_grad(set_to_none=True)
        (d_loss / 2).backward()
        opt_d.step()
        D.requires_grad_(False)
        g_loss = losses.bce_real(D(fake, fake_y))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        if G_ema is not None:
            update_ema(G_ema, G, cfg.ema_decay, step)
        return {"D": d_loss / 2, "G": g_loss}

    fixed_z = torch.randn(8 * len(mcfg.classes), mcfg.noise_dim, generator=torch.Generator().manual_seed(0))

    def sample(step: int) -> None:
        from stargan_app.imaging import make_grid, tensors_to_pils

        shown = G_ema if G_ema is not None else G
        shown.eval()
        with torch.no_grad():
            y = torch.arange(len(mcfg.classes)).repeat_interleave(8)
            imgs = shown(fixed_z.to(dev), y.to(dev)).cpu()
        G.train()
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        make_grid(tensors_to_pils(imgs), ncols=8).save(run_dir / "samples" / f"step_{step:08d}.png")

    driver = Driver(
        run_dir=run_dir,
        dist=d,
        num_steps=cfg.epochs * steps_per_epoch,
        log_every=cfg.log_every,
        save_every=cfg.save_every,
        sample_every=cfg.sample_every,
        keep_checkpoints=cfg.keep_checkpoints,
        state_fn=state,
        sample_fn=sample,
        desc=f"cgan-{cfg.dataset}",
    )
    start = driver.resume(restore)
    started = time.perf_counter()
    try:
        driver.run(start, step_fn)
    finally:
        teardown()
    if d.is_main and cfg.out:
        from stargan_app.training.export import export_run

        print(f"wrote {export_run(run_dir, cfg.out, fp16=cfg.fp16_export)}")
    return run_dir
