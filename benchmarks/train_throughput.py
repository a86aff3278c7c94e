"""StarGAN training throughput: our step (train_stargan's step_fn) vs a plain fp32 eager port of the official loop.

    python benchmarks/train_throughput.py --steps 50 --conv-dim 32 --g-repeat-num 4   # CPU
    python benchmarks/train_throughput.py --steps 300 --batch-size 16                 # GPU: paper config

Both run on synthetic data already in memory, same config, same device, in one process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from stargan_app.config import StarGANConfig
from stargan_app.models import Discriminator, Generator
from stargan_app.training.runs import setup


def official_step_factory(cfg: StarGANConfig, batch: int, device: torch.device):
    """yunjey/stargan Solver.train, one iteration: separate D forwards, fp32, eager, unfused Adam."""
    G, D = Generator(cfg).to(device), Discriminator(cfg).to(device)
    g_opt = torch.optim.Adam(G.parameters(), 1e-4, (0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), 1e-4, (0.5, 0.999))
    n_attr = len(cfg.labels.groups[0])
    images = torch.rand(512, 3, cfg.image_size, cfg.image_size) * 2 - 1
    labels = (torch.rand(512, n_attr) > 0.5).float()

    def step(i: int) -> None:
        idx = torch.randint(0, 512, (batch,))
        x = images[idx].to(device)  # the official loader hands CPU batches to the device every step
        label_org = labels[idx].to(device)
        label_trg = label_org[torch.randperm(batch)]
        zeros = torch.zeros(batch, cfg.labels.c_dim - n_attr, device=device)
        mask = torch.zeros(batch, cfg.labels.mask_dim, device=device)
        mask[:, 0] = 1
        c_org = torch.cat([label_org, zeros[:, : -cfg.labels.mask_dim], mask], 1)
        c_trg = torch.cat([label_trg, zeros[:, : -cfg.labels.mask_dim], mask], 1)
        out_src, out_cls = D(x)
        d_loss_real = -torch.mean(out_src)
        d_loss_cls = F.binary_cross_entropy_with_logits(out_cls[:, :n_attr], label_org, reduction="sum") / batch
        x_fake = G(x, c_trg)
        out_src, _ = D(x_fake.detach())
        d_loss_fake = torch.mean(out_src)
        alpha = torch.rand(batch, 1, 1, 1, device=device)
        x_hat = (alpha * x.data + (1 - alpha) * x_fake.data).requires_grad_(True)
        out_src, _ = D(x_hat)
        grad = torch.autograd.grad(out_src, x_hat, torch.ones_like(out_src), create_graph=True)[0]
        d_loss_gp = torch.mean((grad.view(batch, -1).norm(2, dim=1) - 1) ** 2)
        d_loss = d_loss_real + d_loss_fake + d_loss_cls + 10 * d_loss_gp
        g_opt.zero_grad()
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        loss = {"D/loss": d_loss.item()}  # the official loop syncs every step for its logs
        if (i + 1) % 5 == 0:
            x_fake = G(x, c_trg)
            out_src, out_cls = D(x_fake)
            x_rec = G(x_fake, c_org)
            g_loss = (-torch.mean(out_src) + 10 * torch.mean(torch.abs(x - x_rec))
                      + F.binary_cross_entropy_with_logits(out_cls[:, :n_attr], label_trg, reduction="sum") / batch)
            g_opt.zero_grad()
            d_opt.zero_grad()
            g_loss.backward()
            g_opt.step()
            loss["G/loss"] = g_loss.item()

    return step


def ours_step_factory(cfg: StarGANConfig, batch: int, device: torch.device, amp: bool):
    """The step function train_stargan runs, on synthetic CelebA-layout data written to a temp dir."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from stargan_app.config import StarGANTrainConfig
    from stargan_app.training import stargan_loop
    from stargan_app.training.runs import Driver

    tmp = Path(tempfile.mkdtemp())
    (tmp / "img_align_celeba").mkdir()
    names = [a for g in cfg.labels.groups for a in g]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, 129):
        Image.fromarray(rng.integers(0, 255, (109, 89, 3), dtype=np.uint8)).save(tmp / "img_align_celeba" / f"{i:06d}.jpg")
        rows.append(f"{i:06d}.jpg " + " ".join(rng.choice(["-1", "1"], len(names))))
    (tmp / "list_attr_celeba.txt").write_text(f"128\n{' '.join(names)}\n" + "\n".join(rows) + "\n")
    captured = {}
    original_run = Driver.run

    def capture(self, start, step_fn):  # grab the loop's step function instead of running the loop
        captured["step"] = step_fn

    Driver.run = capture
    try:
        stargan_loop.train_stargan(StarGANTrainConfig(
            data_dir=str(tmp), run_dir=str(tmp / "run"), out="", image_size=cfg.image_size, conv_dim=cfg.conv_dim,
            g_repeat_num=cfg.g_repeat_num, d_conv_dim=cfg.d_conv_dim, d_repeat_num=cfg.d_repeat_num, test_size=8,
            batch_size=batch, num_iters=10**6, sample_every=0, device=str(device), amp=amp))
    finally:
        Driver.run = original_run
    return captured["step"]


def measure(step, steps: int, device: torch.device) -> float:
    for i in range(10):  # warm-up (cuDNN autotune, allocator)
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(10, 10 + steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--conv-dim", type=int, default=64)
    ap.add_argument("--g-repeat-num", type=int, default=6)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = setup(args.device).device
    cfg = StarGANConfig(image_size=args.image_size, conv_dim=args.conv_dim, g_repeat_num=args.g_repeat_num,
                        d_conv_dim=args.conv_dim)
    torch.manual_seed(0)
    official = measure(official_step_factory(cfg, args.batch_size, device), args.steps, device)
    ours = measure(ours_step_factory(cfg, args.batch_size, device, amp=device.type == "cuda"), args.steps, device)
    print(f"device={device} threads={torch.get_num_threads()} batch={args.batch_size} size={args.image_size} "
          f"conv_dim={args.conv_dim} res_blocks={args.g_repeat_num} steps={args.steps}")
    print(f"official-style fp32 eager: {official:7.2f} it/s")
    print(f"stargan-app step:          {ours:7.2f} it/s   ratio {ours / official:.2f}x")


if __name__ == "__main__":
    main()
