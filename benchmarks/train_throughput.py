"""StarGAN whole-step training throughput: fp32 vs bf16 autocast (+ channels_last), for each recipe, in one run.

    python benchmarks/train_throughput.py --steps 30 --conv-dim 32 --g-repeat-num 4 --d-conv-dim 32   # CPU
    python benchmarks/train_throughput.py --steps 200 --conv-dim 64 --g-repeat-num 6                  # GPU
    python benchmarks/train_throughput.py --campaign       # the campaign's recipe: layout, batch 32, torch.compile
    python benchmarks/train_throughput.py --guide          # the conditional campaign step with and without the guide
    python benchmarks/train_throughput.py --profile        # one campaign step (the preset, its guide) by phase

`--profile` splits one step of the preset `campaign` (with its guide file) into its phases and times each alone, in
CPU seconds of this process (steady beside other work; run it with OMP_NUM_THREADS=1 for the cost of a phase on one
core): the batch draw, D's step (plain and with the lazy R1 term), G's step and its passes (G, D, the guide), the
optimisers and the moving average.

`--campaign` times the recipe the face model is trained with (v2, image G, deconv_blur, DiffAugment) under the
levers that could raise its G updates/s: bf16 with and without channels_last, batch 32 (images/s is the fair unit
there) and torch.compile of G (inductor; D stays eager, since its R1 needs double backward).

A "step" is one D update plus one G update every n_critic steps (5 for wgan-gp, 1 for v2 and conditional), so the
it/s of the recipes are not the same unit: "G updates/s" is printed beside them. Synthetic data, same process.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from stargan_app.models import Discriminator, Generator
from stargan_app.training.batches import TrainingData, draw_batch
from stargan_app.training.devices import autocast_for, setup
from stargan_app.training.options import StarGANTrainConfig
from stargan_app.training.recipes import recipe_for
from stargan_app.training.runs import new_gan_state
from stargan_app.training.stargan_loop import model_config, train_step


def measure(cfg: StarGANTrainConfig, device: torch.device, steps: int) -> float:
    """Steps per second of the training loop's own train_step (losses, optimiser steps, LR decay, EMA) on batches
    drawn by its own draw_batch from a synthetic uint8 training set."""
    bf16 = autocast_for(device, cfg.amp).enabled
    layout = torch.channels_last if bf16 or device.type == "cuda" else torch.contiguous_format
    return measure_layout(cfg, device, steps, layout)


def measure_layout(
    cfg: StarGANTrainConfig,
    device: torch.device,
    steps: int,
    layout: torch.memory_format,
    guide: torch.nn.Module | None = None,
) -> float:
    """measure() with the memory format given; cfg.compile compiles G as train_stargan does; `guide` is the frozen
    attribute guide G's loss reads."""
    torch.manual_seed(0)
    mcfg = model_config(cfg)
    precision = autocast_for(device, cfg.amp)
    G = Generator(mcfg).to(device, memory_format=layout)
    D = Discriminator(mcfg).to(device, memory_format=layout)
    gan = new_gan_state("stargan", mcfg, G, D, cfg, cfg.g_lr, cfg.d_lr, info={})
    n, S = 256, cfg.image_size
    images = torch.randint(0, 256, (n, 3, S, S), dtype=torch.uint8, device=device)
    labels = (torch.rand(n, mcfg.labels.cls_dim, device=device) < 0.3).float()
    groups = [torch.arange(g, n, len(mcfg.labels.groups)) for g in range(len(mcfg.labels.groups))]
    data = TrainingData(images, labels, groups, layout)
    g_train = torch.compile(G) if cfg.compile else G
    recipe = recipe_for(cfg, guide)

    def step(i: int) -> None:
        train_step(gan, g_train, D, draw_batch(data, mcfg.labels, cfg, i, rank=0), recipe, i, precision)

    for i in range(max(5, recipe.n_critic)):  # warm-up (oneDNN primitive caches)
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--conv-dim", type=int, default=32)
    p.add_argument("--g-repeat-num", type=int, default=4)
    p.add_argument("--d-conv-dim", type=int, default=32)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--campaign", action="store_true", help="time the campaign's recipe under layout, batch and compile")
    p.add_argument(
        "--guide", action="store_true", help="time the conditional campaign step with and without the attribute guide"
    )
    p.add_argument("--profile", action="store_true", help="time one step of the preset 'campaign' by phase")
    args = p.parse_args()
    device = setup(args.device).device
    base = StarGANTrainConfig(
        batch_size=args.batch_size,
        conv_dim=args.conv_dim,
        g_repeat_num=args.g_repeat_num,
        d_conv_dim=args.d_conv_dim,
        image_size=args.image_size,
    )
    bf16 = autocast_for(device, True).enabled
    print(f"device {device}, {torch.get_num_threads()} threads, bf16 autocast available: {bf16}")
    if args.campaign:
        return campaign_levers(base, device, args.steps)
    if args.guide:
        return guide_cost(base, device, args.steps)
    if args.profile:
        return profile_campaign_step(device, args.steps)
    rows = []
    variants = (
        ("wgan-gp", "image", "deconv"),
        ("wgan-gp", "image", "deconv_blur"),
        ("v2", "image", "deconv_blur"),
        ("v2", "residual", "deconv_blur"),
        ("conditional", "image", "deconv_blur"),
    )
    for recipe, output, upsample in variants:
        speeds = {}
        for amp in (False, True):
            cfg = dataclasses.replace(base, recipe=recipe, output=output, upsample=upsample, amp=amp)
            speeds[amp] = measure(cfg, device, args.steps)
        g_per_step = 1 / recipe_for(dataclasses.replace(base, recipe=recipe)).n_critic
        rows.append((f"{recipe:11s} {output:8s} {upsample:11s}", speeds[False], speeds[True], g_per_step))
    columns = ("fp32 it/s", "bf16 it/s", "bf16/fp32")
    header = " ".join(f"{c:>10s}" for c in columns)
    print(f"{'recipe      G        upsample':32s} {header} {'G upd/s bf16':>13s}")
    for name, fp32, bf16, g_per_step in rows:
        print(f"{name:32s} {fp32:10.2f} {bf16:10.2f} {bf16 / fp32:10.2f}x {bf16 * g_per_step:13.2f}")


def campaign_levers(base: StarGANTrainConfig, device: torch.device, steps: int) -> None:
    """The campaign recipe, bf16, under each lever; v2 makes one G update per step."""
    recipe = dataclasses.replace(
        base, recipe="v2", output="image", upsample="deconv_blur", augment="translation,cutout"
    )
    levers = (
        ("bf16, channels_last, batch 16, compile G", dataclasses.replace(recipe, compile=True), torch.channels_last),
        ("bf16, channels_last, batch 16 (the loop's)", recipe, torch.channels_last),
        ("bf16, contiguous, batch 16", recipe, torch.contiguous_format),
        ("fp32, contiguous, batch 16", dataclasses.replace(recipe, amp=False), torch.contiguous_format),
        (
            "bf16, channels_last, batch 32",
            dataclasses.replace(recipe, batch_size=2 * base.batch_size),
            torch.channels_last,
        ),
    )
    print(f"{'lever':42s} {'G upd/s':>8s} {'images/s':>9s}")
    for name, cfg, layout in levers:
        try:
            rate = measure_layout(cfg, device, steps, layout)
        except Exception as e:  # inductor on the CPU: a failure is a result too
            print(f"{name:42s} failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}", flush=True)
            continue
        print(f"{name:42s} {rate:8.2f} {rate * cfg.batch_size:9.1f}", flush=True)


def guide_cost(base: StarGANTrainConfig, device: torch.device, steps: int) -> None:
    """The conditional campaign step (bf16 where native, channels_last, compiled G) without and with a frozen guide
    of the default size (random weights: the cost does not depend on them)."""
    from stargan_app.config import GuideConfig
    from stargan_app.models import AttributeGuide

    cfg = dataclasses.replace(
        base, recipe="conditional", output="image", upsample="deconv_blur", augment="translation,cutout", compile=True
    )
    guide = AttributeGuide(GuideConfig(image_size=base.image_size)).to(device).eval().requires_grad_(False)
    layout = torch.channels_last if autocast_for(device, cfg.amp).enabled else torch.contiguous_format
    print(f"{'conditional campaign step':34s} {'steps/s':>8s} {'s/step':>8s}")
    for name, g in (("without the guide", None), ("with the guide (width 32)", guide)):
        rate = measure_layout(cfg, device, steps, layout, g)
        print(f"{name:34s} {rate:8.3f} {1 / rate:8.3f}", flush=True)


def cpu_ms(fn: Callable[[], object], reps: int, warmup: int = 3) -> float:
    """Milliseconds of this process's CPU time per call of fn, after warm-up calls."""
    for _ in range(warmup):
        fn()
    start = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - start) / reps * 1000


def profile_campaign_step(device: torch.device, reps: int) -> None:
    """The preset 'campaign' (its guide file, synthetic data) by phase: each phase timed alone, then the whole step."""
    from stargan_app.checkpoint import load_frozen_guide
    from stargan_app.training.presets import CAMPAIGN
    from stargan_app.training.recipes import guide_loss
    from stargan_app.training.runs import frozen, update_ema

    cfg, mcfg = CAMPAIGN, model_config(CAMPAIGN)
    guide, _ = load_frozen_guide(cfg.guide, mcfg.labels.attributes, device)
    precision = autocast_for(device, cfg.amp)
    layout = torch.channels_last if precision.enabled or device.type == "cuda" else torch.contiguous_format
    torch.manual_seed(0)
    G = Generator(mcfg).to(device, memory_format=layout)
    D = Discriminator(mcfg).to(device, memory_format=layout)
    gan = new_gan_state("stargan", mcfg, G, D, cfg, cfg.g_lr, cfg.d_lr, info={})
    images = torch.randint(0, 256, (256, 3, cfg.image_size, cfg.image_size), dtype=torch.uint8, device=device)
    labels = (torch.rand(256, mcfg.labels.cls_dim, device=device) < 0.3).float()
    data = TrainingData(images, labels, [torch.arange(g, 256, 2) for g in range(2)], layout)
    g_train, recipe = torch.compile(G), recipe_for(cfg, guide)
    batch = draw_batch(data, mcfg.labels, cfg, 1, rank=0)

    def backward(loss: torch.Tensor) -> None:
        loss.backward()
        G.zero_grad(set_to_none=True), D.zero_grad(set_to_none=True)

    def g_pass() -> None:
        with precision:
            out = g_train(batch.x, batch.c_trg)
        backward(out.float().mean())

    def d_pass() -> None:
        x = batch.x.detach().requires_grad_(True)
        with frozen(D), precision:
            src, _, cond = D(recipe.seen_by_d(x, batch), with_cond=True)
        backward(src.float().mean() + cond.float().mean())

    def guide_pass() -> None:
        x = batch.x.detach().requires_grad_(True)
        with precision:
            loss = guide_loss(guide, x, batch, cfg.guide_keep)
        backward(loss)

    def g_step() -> None:
        with precision:
            x_fake = g_train(batch.x, batch.c_trg)
        with frozen(D):
            backward(recipe.g_loss(g_train, D, batch, 1, precision, x_fake)[0])

    phases = {
        "batch draw": lambda: draw_batch(data, mcfg.labels, cfg, 3, rank=0),
        "D step, plain (3 of 4 steps)": lambda: backward(recipe.d_loss(D, G, batch, 1, precision, batch.x)[0]),
        "D step, with lazy R1 (1 of 4)": lambda: backward(recipe.d_loss(D, G, batch, 0, precision, batch.x)[0]),
        "G step: 3 G passes, D, guide": g_step,
        "  one G pass, forward + backward": g_pass,
        "  D on 16 fakes, forward + backward": d_pass,
        "  the guide (+ its keep read)": guide_pass,
        "(before: D's fakes, an eager G pass)": lambda: recipe.fakes(G, batch),
        "Adam, G and D": lambda: (gan.opt_g.step(), gan.opt_d.step()),
        "moving average of G": lambda: update_ema(gan.G_ema, G, cfg.ema_decay, 100),
    }
    print(f"{'phase of one campaign step':38s} {'CPU ms':>8s}")
    for name, fn in phases.items():
        print(f"{name:38s} {cpu_ms(fn, reps):8.0f}", flush=True)
    whole = cpu_ms(lambda: train_step(gan, g_train, D, batch, recipe, 5, precision), reps)
    print(f"{'whole step without R1 (train_step)':38s} {whole:8.0f}")


if __name__ == "__main__":
    main()
