"""train_stargan(cfg): one WGAN-GP StarGAN loop for every label group (multi-dataset StarGAN with a mask vector)."""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from stargan_app.config import LabelSchema, StarGANConfig, StarGANTrainConfig
from stargan_app.labels import full_label_vector, single_attribute_edits
from stargan_app.models import Discriminator, Generator
from stargan_app.training import losses
from stargan_app.training.data import load_celeba, load_face_crops
from stargan_app.training.runs import (
    Driver,
    autocast_for,
    hardware,
    linear_decay,
    restore_training_state,
    setup,
    step_generator,
    teardown,
    training_state,
    update_ema,
    write_run_config,
)


def model_config(cfg: StarGANTrainConfig) -> StarGANConfig:
    groups = tuple(tuple(a for a in g.split(",") if a) for g in (cfg.group_a, cfg.group_b))
    return StarGANConfig(
        image_size=cfg.image_size,
        conv_dim=cfg.conv_dim,
        g_repeat_num=cfg.g_repeat_num,
        d_conv_dim=cfg.d_conv_dim,
        d_repeat_num=cfg.d_repeat_num,
        labels=LabelSchema(groups=tuple(g for g in groups if g)),
        output=cfg.output,
        upsample=cfg.upsample,
    )


@dataclass
class Batch:
    """One step's data: real images of one label group, their labels, and target labels (a shuffle of them)."""

    x: torch.Tensor  # (B, 3, S, S) in [-1, 1]
    label_org: torch.Tensor  # (B, n) the group's real labels
    label_trg: torch.Tensor  # (B, n) target labels
    c_org: torch.Tensor  # (B, c_dim) full label vectors (group labels, zeros elsewhere, mask one-hot)
    c_trg: torch.Tensor
    cls_slice: slice  # the group's columns in D's classification output
    alpha: torch.Tensor  # (B, 1, 1, 1) interpolation weights for the WGAN-GP penalty


def n_critic(cfg: StarGANTrainConfig) -> int:
    return cfg.n_critic or (5 if cfg.recipe == "wgan-gp" else 1)


def compute_d_loss(D: nn.Module, G: nn.Module, batch: Batch, cfg: StarGANTrainConfig, step: int,
                   autocast) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Critic loss of either recipe: adversarial terms, a gradient penalty, and classification of real images."""
    x, B = batch.x, batch.x.size(0)
    with autocast:
        with torch.no_grad():
            x_fake = G(x, batch.c_trg).to(x.dtype)
        lazy_r1 = cfg.recipe == "v2" and cfg.lambda_r1 > 0 and step % cfg.r1_every == 0
        if lazy_r1:  # R1 needs the real forward on its own, with x requiring grad
            x_real = x.detach().requires_grad_(True)
            src_real, cls_real = D(x_real)
            src_fake, _ = D(x_fake)
        else:  # real and fake in one forward (D has no normalisation)
            src, cls = D(torch.cat([x, x_fake]))
            (src_real, src_fake), cls_real = src.split(B), cls[:B]
    d_cls = losses.classification_loss(cls_real[:, batch.cls_slice], batch.label_org)
    if cfg.recipe == "wgan-gp":
        with autocast:  # the interpolates get their own forward so the double backward covers only them
            x_hat = (batch.alpha * x + (1 - batch.alpha) * x_fake.float()).requires_grad_(True)
            src_hat, _ = D(x_hat)
        d_real, d_fake = losses.critic_real_loss(src_real), losses.critic_fake_loss(src_fake)
        d_reg = losses.gradient_penalty(src_hat, x_hat)
        d_loss = d_real + d_fake + cfg.lambda_cls * d_cls + cfg.lambda_gp * d_reg
        return d_loss, {"D/real": d_real, "D/fake": d_fake, "D/cls": d_cls, "D/gp": d_reg}
    d_real, d_fake = losses.bce_real(src_real.float()), losses.bce_fake(src_fake.float())
    d_loss = d_real + d_fake + cfg.lambda_cls * d_cls
    logs = {"D/real": d_real, "D/fake": d_fake, "D/cls": d_cls}
    if lazy_r1:
        d_r1 = losses.r1_penalty(src_real, x_real)
        d_loss = d_loss + cfg.lambda_r1 * cfg.r1_every * d_r1
        logs["D/r1"] = d_r1
    return d_loss, logs


def compute_g_loss(G: nn.Module, D: nn.Module, batch: Batch, cfg: StarGANTrainConfig, step: int,
                   autocast) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Generator loss: fool D, show the target labels, reconstruct the input; a masked G also pays for its mask."""
    with autocast:
        x_fake, _, mask = G(batch.x, batch.c_trg, return_parts=True)
        src, cls = D(x_fake)
        x_rec = G(x_fake, batch.c_org)
    g_fake = -src.float().mean() if cfg.recipe == "wgan-gp" else losses.bce_real(src.float())
    g_cls = losses.classification_loss(cls[:, batch.cls_slice], batch.label_trg)
    g_rec = losses.reconstruction_loss(batch.x, x_rec)
    g_loss = g_fake + cfg.lambda_rec * g_rec + cfg.lambda_cls * g_cls
    logs = {"G/fake": g_fake, "G/cls": g_cls, "G/rec": g_rec}
    if mask is not None:  # penalised on the translation pass only: reconstruction may open the mask freely
        mask_mean, mask_tv = losses.mask_penalties(mask)
        scale = losses.mask_penalty_scale(step, cfg.mask_warmup)
        g_loss = g_loss + scale * (cfg.lambda_mask * mask_mean + cfg.lambda_mask_tv * mask_tv)
        logs.update({"G/mask_mean": mask_mean.detach(), "G/mask_tv": mask_tv.detach()})
    return g_loss, logs


def train_stargan(cfg: StarGANTrainConfig) -> Path:
    """Train (or continue the run in cfg.run_dir), then export G and D to cfg.out. Returns the run dir."""
    if cfg.recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {cfg.recipe!r}")
    dist = setup(cfg.device)
    run_dir = Path(cfg.run_dir)
    mcfg = model_config(cfg)
    schema = mcfg.labels
    torch.manual_seed(cfg.seed)
    data = load_celeba(cfg.data_dir, schema.groups, cfg.image_size, cfg.test_size, cfg.max_images)
    if any(len(g) == 0 for g in data.group_indices):
        raise ValueError(f"a label group has no training images: sizes {[len(g) for g in data.group_indices]}")
    if dist.is_main:
        write_run_config(run_dir, cfg)
        sizes = ", ".join(f"group {i}: {len(g)}" for i, g in enumerate(data.group_indices))
        print(f"{len(data.images)} training images ({sizes}), {data.skipped} skipped, {len(data.test_files)} held out")

    dev = dist.device
    precision = autocast_for(dev, cfg.amp)
    images = data.images.to(dev)  # the whole uint8 set lives on the device: batches never touch the host
    labels = data.labels.to(dev)
    # channels_last pays off on GPU and with bf16 on CPU (oneDNN's blocked kernels); fp32 CPU convs are faster without
    layout = torch.channels_last if dev.type == "cuda" or precision.enabled else torch.contiguous_format
    G = Generator(mcfg).to(dev, memory_format=layout)
    D = Discriminator(mcfg).to(dev, memory_format=layout)
    if mcfg.output == "masked":
        init_mask_bias(G)
    G_ema = copy.deepcopy(G).requires_grad_(False).eval() if cfg.ema_decay else None
    init_info: dict = {}  # provenance of --init-weights, carried through resumes
    fused = dev.type == "cuda" or None
    opt_g = torch.optim.Adam(G.parameters(), cfg.g_lr, (cfg.beta1, cfg.beta2), fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), cfg.d_lr, (cfg.beta1, cfg.beta2), fused=fused)
    clock = {"before": 0.0, "started": time.perf_counter()}  # training seconds of earlier sessions, this one's start

    def state(step: int) -> dict:
        elapsed = clock["before"] + time.perf_counter() - clock["started"]
        return training_state("stargan", step, G, D, opt_g, opt_d, mcfg, elapsed, {
            "data": f"CelebA layout at {cfg.data_dir}: {len(data.images)} training images "
                f"({data.skipped} skipped), last {cfg.test_size} ids held out, {cfg.image_size}x{cfg.image_size}",
            "hardware": hardware(dist),
            "batch_size": cfg.batch_size * dist.world,
            "recipe": cfg.recipe,
            "precision": "bf16 autocast" if precision.enabled else "fp32",
            **init_info,
        }, G_ema=G_ema)

    def restore(s: dict) -> None:
        clock["before"] = restore_training_state(s, G, D, opt_g, opt_d, G_ema)
        init_info.update({k: v for k, v in s.get("info", {}).items() if k.startswith("init_")})

    g_train = DistributedDataParallel(G) if dist.world > 1 else G
    d_train = DistributedDataParallel(D) if dist.world > 1 else D
    if cfg.compile:  # D is left eager: the gradient penalty needs double backward, which compile lacks
        g_train = torch.compile(g_train)
    critic_steps = n_critic(cfg)

    def next_batch(step: int) -> Batch:
        gen = step_generator(cfg.seed, dist.rank, step)
        group = step % len(schema.groups)
        pool, B = data.group_indices[group], cfg.batch_size
        pick = pool[torch.randint(len(pool), (B,), generator=gen)].to(dev, non_blocking=True)
        flip = (torch.rand(B, 1, 1, 1, generator=gen) < 0.5).to(dev, non_blocking=True)
        perm = torch.randperm(B, generator=gen).to(dev, non_blocking=True)
        alpha = torch.rand(B, 1, 1, 1, generator=gen).to(dev, non_blocking=True)
        x = images[pick].float().div_(127.5).sub_(1.0)
        x = torch.where(flip, x.flip(3), x).contiguous(memory_format=layout)
        label_org = labels[pick][:, schema.group_slice(group)]
        label_trg = label_org[perm]  # target labels: a shuffle of the real ones
        return Batch(x, label_org, label_trg, full_label_vector(schema, group, label_org),
                     full_label_vector(schema, group, label_trg), schema.group_slice(group), alpha)

    def train_step(step: int) -> dict[str, torch.Tensor]:
        batch = next_batch(step)
        for opt, base in ((opt_g, cfg.g_lr), (opt_d, cfg.d_lr)):
            for pg in opt.param_groups:
                pg["lr"] = linear_decay(base, step, cfg.num_iters)
        d_loss, logs = compute_d_loss(d_train, G, batch, cfg, step, precision)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if (step + 1) % critic_steps == 0:
            D.requires_grad_(False)
            g_loss, g_logs = compute_g_loss(g_train, D, batch, cfg, step, precision)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            D.requires_grad_(True)
            if G_ema is not None:
                update_ema(G_ema, G, cfg.ema_decay, step)
            logs.update(g_logs)
        return logs

    sample_faces = load_face_crops(Path(cfg.data_dir) / "img_align_celeba", data.test_files[:8], cfg.image_size)
    sample_labels = data.test_labels[: len(sample_faces)]

    def sample(step: int) -> None:
        grid = sample_grid(G_ema if G_ema is not None else G, schema, sample_faces, sample_labels)
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        grid.save(run_dir / "samples" / f"step_{step:08d}.png")

    driver = Driver(
        run_dir=run_dir,
        dist=dist,
        num_steps=cfg.num_iters,
        log_every=cfg.log_every,
        save_every=cfg.save_every,
        sample_every=cfg.sample_every,
        keep_checkpoints=cfg.keep_checkpoints,
        state_fn=state,
        sample_fn=sample if len(sample_faces) else None,
        desc="stargan",
    )
    start = driver.resume(restore)
    if start == 0 and cfg.init_weights:  # a resumed run already holds its weights: the file is not read again
        init_info.update(init_from_weights(cfg.init_weights, mcfg, G, D))
        if G_ema is not None:
            G_ema.load_state_dict(G.state_dict())
    clock["started"] = time.perf_counter()
    try:
        driver.run(start, train_step)
    finally:
        teardown()
    if dist.is_main and cfg.out:
        from stargan_app.training.export import export_run

        print(f"wrote {export_run(run_dir, cfg.out, fp16=cfg.fp16_export)}")
    return run_dir


RECIPES = ("wgan-gp", "v2")
DECONV_MODES = {"deconv", "deconv_blur"}
MASK_BIAS_INIT = 0.0  # the mask starts half open: sigmoid(0) = 0.5


def init_mask_bias(G: Generator) -> None:
    """Start the mask channel at sigmoid(MASK_BIAS_INIT) with zero weights, so the first edits are uniform blends."""
    last = G.main[-1]
    with torch.no_grad():
        last.weight[3].zero_()
        last.bias.zero_().add_(torch.tensor([0.0, 0.0, 0.0, MASK_BIAS_INIT]))


def init_from_weights(path: str, mcfg: StarGANConfig, G: Generator, D: Discriminator) -> dict:
    """Copy G and D from a stargan weights file of the same architecture; returns provenance for the run's info.

    An "image" G can seed a "masked" G of the same shape: its colour channels take the image G's last conv,
    and the mask channel keeps its fresh initialisation. "deconv" and "deconv_blur" share their weights.
    """
    from stargan_app.checkpoint import load_weights
    from stargan_app.errors import WeightsError

    loaded = load_weights(path, kind="stargan")
    seeds_masked = loaded.config.output == "image" and mcfg.output == "masked"
    same_weights = {loaded.config.upsample, mcfg.upsample} <= DECONV_MODES or loaded.config.upsample == mcfg.upsample
    as_this_run = dataclasses.replace(loaded.config, output=mcfg.output, upsample=mcfg.upsample)
    if as_this_run != mcfg or not same_weights or not (seeds_masked or loaded.config.output == mcfg.output):
        raise WeightsError(f"--init-weights {path} was trained with {loaded.config}, not this run's {mcfg}.")
    if "D" not in loaded.modules:
        raise WeightsError(f"--init-weights {path} has no discriminator to continue training from.")
    g_state = loaded.modules["G"].state_dict()  # load_weights already gives fp32 modules
    if seeds_masked:
        own = G.state_dict()
        last = f"main.{len(G.main) - 1}"
        weight = own[f"{last}.weight"].clone()
        weight[:3] = g_state[f"{last}.weight"]
        bias = own[f"{last}.bias"].clone()
        bias[:3] = 0.0  # the image G's last conv has no bias
        g_state.update({f"{last}.weight": weight, f"{last}.bias": bias})
    G.load_state_dict(g_state)
    D.load_state_dict(loaded.modules["D"].state_dict())
    return {"init_weights": str(path), "init_steps": int(loaded.info.get("steps", 0)),
            "init_train_seconds": float(loaded.info.get("train_seconds", 0.0)),
            "init_output": loaded.config.output}


@torch.no_grad()
def sample_grid(G: Generator, schema: LabelSchema, faces: torch.Tensor, face_labels: torch.Tensor):
    """Rows: test faces. Columns: input, reconstruction, then every single-attribute edit.

    A masked G gets a second row per face showing each output's attention mask (white = edited), titled by
    its mean in the first tile.
    """
    from stargan_app.imaging import make_grid, tensor_to_pil

    dev = next(G.parameters()).device
    tiles = []
    for x, lab in zip(faces, face_labels):
        source = dict(zip(schema.attributes, lab.tolist()))
        edits = single_attribute_edits(schema, source)
        recon_c = full_label_vector(schema, 0, lab[schema.group_slice(0)][None])[0]
        cs = torch.stack([recon_c] + [c for _, c in edits]).to(dev)
        outs, _, masks = G.forward_parts(x[None].to(dev).expand(len(cs), -1, -1, -1), cs)
        tiles += [tensor_to_pil(x)] + [tensor_to_pil(o) for o in outs.float()]
        if masks is not None:
            grey = masks.float().expand(-1, 3, -1, -1) * 2 - 1
            tiles += [tensor_to_pil(torch.full_like(x, masks.float().mean().item() * 2 - 1))]
            tiles += [tensor_to_pil(m) for m in grey]
    return make_grid(tiles, ncols=len(cs) + 1)
