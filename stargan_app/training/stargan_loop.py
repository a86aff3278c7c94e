"""train_stargan(cfg): one StarGAN loop for every label group (mask vector); the paper's WGAN-GP recipe or StarGAN v2's."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from stargan_app.config import LabelSchema, StarGANConfig
from stargan_app.imaging import make_grid, tensor_to_pil, to_model_range
from stargan_app.labels import full_label_vector, single_attribute_edits
from stargan_app.models import Discriminator, Generator
from stargan_app.runtime import module_device
from stargan_app.training import augment, losses
from stargan_app.training.checkpoints import GANState
from stargan_app.training.config import StarGANTrainConfig
from stargan_app.training.data import load_celeba, load_face_crops
from stargan_app.training.devices import Autocast, autocast_for, hardware, setup
from stargan_app.training.lineage import stages_of
from stargan_app.training.runs import (
    Driver,
    frozen,
    linear_decay,
    new_gan_state,
    optimizer_step,
    step_generator,
    train_and_export,
    update_ema,
    write_run_config,
)

RECIPES = ("wgan-gp", "v2")
DECONV_MODES = {"deconv", "deconv_blur"}
MASK_BIAS_INIT = 0.0  # the mask starts half open: sigmoid(0) = 0.5


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
    aug_gen: torch.Generator = field(default_factory=torch.Generator)  # DiffAugment's draws (draw_batch: the step's)
    gate: torch.Tensor | None = None  # (B, 1, S, S) where an edit may change the image (cfg.edit_regions; None: all)

    def composed(self, source: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """G's output where the gate is open and its input elsewhere (G's output itself without a gate)."""
        return output if self.gate is None else source + self.gate.to(output.dtype) * (output - source)

    def seen_by_d(self, images: torch.Tensor, cfg: StarGANTrainConfig) -> torch.Tensor:
        """What D is shown of `images`: the run's DiffAugment policy applied (differentiably), or the images."""
        return augment.diff_augment(images, augment.parse_policy(cfg.augment), self.aug_gen)


def n_critic(cfg: StarGANTrainConfig) -> int:
    return cfg.n_critic or (5 if cfg.recipe == "wgan-gp" else 1)


def compute_d_loss(
    D: nn.Module, G: nn.Module, batch: Batch, cfg: StarGANTrainConfig, step: int, autocast: Autocast
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Critic loss of either recipe: adversarial terms, a gradient penalty, and classification of real images."""
    x, B = batch.x, batch.x.size(0)
    with autocast:
        with torch.no_grad():
            x_fake = batch.composed(x, G(x, batch.c_trg).to(x.dtype))
        lazy_r1 = cfg.recipe == "v2" and cfg.lambda_r1 > 0 and step % cfg.r1_every == 0
        if lazy_r1:  # R1 needs the real forward on its own, with x requiring grad
            x_real = x.detach().requires_grad_(True)
            src_real, cls_real = D(batch.seen_by_d(x_real, cfg))
            src_fake, _ = D(batch.seen_by_d(x_fake, cfg))
        else:  # real and fake in one forward (D has no normalisation)
            src, cls = D(batch.seen_by_d(torch.cat([x, x_fake]), cfg))
            (src_real, src_fake), cls_real = src.split(B), cls[:B]
    d_cls = losses.classification_loss(cls_real[:, batch.cls_slice], batch.label_org)
    if cfg.recipe == "wgan-gp":
        with autocast:  # the interpolates get their own forward so the double backward covers only them
            x_hat = (batch.alpha * x + (1 - batch.alpha) * x_fake.float()).requires_grad_(True)
            src_hat, _ = D(batch.seen_by_d(x_hat, cfg))
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


def compute_g_loss(
    G: nn.Module, D: nn.Module, batch: Batch, cfg: StarGANTrainConfig, step: int, autocast: Autocast
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Generator loss: fool D, show the target labels, reconstruct the input; a masked G also pays for its mask."""
    with autocast:
        x_fake, _, mask = G(batch.x, batch.c_trg, return_parts=True)
        x_fake = batch.composed(batch.x, x_fake)
        src, cls = D(batch.seen_by_d(x_fake, cfg))
        x_rec = batch.composed(x_fake, G(x_fake, batch.c_org))
    g_fake = losses.critic_real_loss(src) if cfg.recipe == "wgan-gp" else losses.bce_real(src.float())
    g_cls = losses.classification_loss(cls[:, batch.cls_slice], batch.label_trg)
    g_rec = losses.reconstruction_loss(batch.x, x_rec)
    g_loss = g_fake + cfg.lambda_rec * g_rec + cfg.lambda_cls * g_cls
    logs = {"G/fake": g_fake, "G/cls": g_cls, "G/rec": g_rec}
    if cfg.lambda_id > 0:  # the cycle alone leaves G(x, c_org) free to drift (colour casts) as long as it inverts
        with autocast:
            x_id = G(batch.x, batch.c_org)
        g_id = losses.reconstruction_loss(batch.x, x_id)
        g_loss = g_loss + cfg.lambda_id * g_id
        logs["G/id"] = g_id
    if mask is not None:  # penalised on the translation pass only: reconstruction may open the mask freely
        mask_mean, mask_tv = losses.mask_penalties(mask)
        scale = losses.mask_penalty_scale(step, cfg.mask_warmup)
        g_loss = g_loss + scale * (cfg.lambda_mask * mask_mean + cfg.lambda_mask_tv * mask_tv)
        logs.update({"G/mask_mean": mask_mean.detach(), "G/mask_tv": mask_tv.detach()})
    return g_loss, logs


@dataclass
class TrainingData:
    """The training set on the training device (uint8, so a batch never touches the host) and its group split."""

    images: torch.Tensor  # (N, 3, S, S) uint8
    labels: torch.Tensor  # (N, n_attributes) in {0, 1}
    group_indices: list[torch.Tensor]  # per label group, rows of `images` (on the CPU: indexed by the step's generator)
    layout: torch.memory_format  # memory format of the batches (channels_last where it pays)
    edit_regions: list[torch.Tensor] | None = None  # per label group, (n_group, S, S) attribute maps (cfg.edit_regions)


def edit_gate(label_org: torch.Tensor, label_trg: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S): per face, the pixel-wise max of the maps (n, S, S) of the attributes whose label the target
    changes; all ones where the target changes none (the fake is then G's reconstruction, as without a gate)."""
    changed = (label_org != label_trg).to(maps.dtype)
    gate = (changed[:, :, None, None] * maps[None]).amax(1, keepdim=True)
    return torch.where((changed.sum(1) > 0)[:, None, None, None], gate, torch.ones_like(gate))


def load_edit_regions(path: str, schema: LabelSchema, size: int, device: torch.device) -> list[torch.Tensor]:
    """The maps of a region-maps file, stacked per label group; an attribute without a map is never gated (ones)."""
    from stargan_app.inference.compositing import RegionMaps

    regions, everywhere = RegionMaps.load(path), torch.ones(size, size)
    return [torch.stack([regions.union([a], size, everywhere) for a in group]).to(device) for group in schema.groups]


def draw_batch(data: TrainingData, schema: LabelSchema, cfg: StarGANTrainConfig, step: int, rank: int) -> Batch:
    """Step `step`'s batch: groups alternate by step; images, flips, target shuffle and GP weights all come from
    the step's own generator, so a resumed run draws exactly what an uninterrupted one would."""
    gen = step_generator(cfg.seed, rank, step)
    dev = data.images.device
    group = step % len(schema.groups)
    pool, B = data.group_indices[group], cfg.batch_size
    pick = pool[torch.randint(len(pool), (B,), generator=gen)].to(dev, non_blocking=True)
    flip = (torch.rand(B, 1, 1, 1, generator=gen) < 0.5).to(dev, non_blocking=True)
    perm = torch.randperm(B, generator=gen).to(dev, non_blocking=True)
    alpha = torch.rand(B, 1, 1, 1, generator=gen).to(dev, non_blocking=True)
    x = to_model_range(data.images[pick])
    x = torch.where(flip, x.flip(3), x).contiguous(memory_format=data.layout)
    label_org = data.labels[pick][:, schema.group_slice(group)]
    label_trg = label_org[perm]  # target labels: a shuffle of the real ones
    gate = None if data.edit_regions is None else edit_gate(label_org, label_trg, data.edit_regions[group])
    return Batch(
        x,
        label_org,
        label_trg,
        full_label_vector(schema, group, label_org),
        full_label_vector(schema, group, label_trg),
        schema.group_slice(group),
        alpha,
        gen,
        gate,
    )


def train_step(
    gan: GANState,
    g_train: nn.Module,
    d_train: nn.Module,
    batch: Batch,
    cfg: StarGANTrainConfig,
    step: int,
    precision: Autocast,
) -> dict[str, torch.Tensor]:
    """One step of the paper's algorithm: D on every step, G (and its EMA) on every n_critic-th; LR decayed linearly.

    g_train and d_train are the modules the passes run through (gan.G and gan.D, or their DDP/compiled wrappers).
    """
    for opt, base in ((gan.opt_g, cfg.g_lr), (gan.opt_d, cfg.d_lr)):
        for group in opt.param_groups:
            group["lr"] = linear_decay(base, step, cfg.num_iters)
    d_loss, logs = compute_d_loss(d_train, gan.G, batch, cfg, step, precision)
    optimizer_step(gan.opt_d, d_loss)
    if (step + 1) % n_critic(cfg) == 0:
        with frozen(gan.D):
            g_loss, g_logs = compute_g_loss(g_train, gan.D, batch, cfg, step, precision)
            optimizer_step(gan.opt_g, g_loss)
        if gan.G_ema is not None:
            update_ema(gan.G_ema, gan.G, cfg.ema_decay, step)
        logs.update(g_logs)
    return logs


def train_stargan(cfg: StarGANTrainConfig) -> Path:
    """Train (or continue the run in cfg.run_dir), then export G and D to cfg.out. Returns the run dir."""
    if cfg.recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {cfg.recipe!r}")
    augment.parse_policy(cfg.augment)  # an unknown name fails here, not at the first step
    if cfg.continue_from and cfg.init_weights:
        raise ValueError("--continue-from and --init-weights both name a starting point: give one")
    dist = setup(cfg.device)
    run_dir = Path(cfg.run_dir)
    mcfg = model_config(cfg)
    schema = mcfg.labels
    torch.manual_seed(cfg.seed)
    split = load_celeba(cfg.data_dir, schema.groups, cfg.image_size, cfg.test_size, cfg.max_images)
    if any(len(g) == 0 for g in split.group_indices):
        raise ValueError(f"a label group has no training images: sizes {[len(g) for g in split.group_indices]}")
    if dist.is_main:
        write_run_config(run_dir, cfg)
        sizes = ", ".join(f"group {i}: {len(g)}" for i, g in enumerate(split.group_indices))
        print(
            f"{len(split.images)} training images ({sizes}), {split.skipped} skipped, {len(split.test_files)} held out"
        )

    dev = dist.device
    precision = autocast_for(dev, cfg.amp)
    # channels_last pays off on GPU and with bf16 on CPU (oneDNN's blocked kernels); fp32 CPU convs are faster without
    layout = torch.channels_last if dev.type == "cuda" or precision.enabled else torch.contiguous_format
    regions = load_edit_regions(cfg.edit_regions, schema, cfg.image_size, dev) if cfg.edit_regions else None
    data = TrainingData(split.images.to(dev), split.labels.to(dev), split.group_indices, layout, regions)
    G = Generator(mcfg).to(dev, memory_format=layout)
    D = Discriminator(mcfg).to(dev, memory_format=layout)
    if mcfg.output == "masked":
        init_mask_bias(G)
    penalty = {"gp": cfg.lambda_gp} if cfg.recipe == "wgan-gp" else {"r1": cfg.lambda_r1, "r1_every": cfg.r1_every}
    info = {
        "data": f"CelebA layout at {cfg.data_dir}: {len(split.images)} training images ({split.skipped} skipped), "
        f"last {cfg.test_size} ids held out, {cfg.image_size}x{cfg.image_size}",
        "hardware": hardware(dist),
        "batch_size": cfg.batch_size * dist.world,
        "recipe": cfg.recipe,
        "n_critic": n_critic(cfg),
        "augment": cfg.augment or "none",
        "edit_regions": cfg.edit_regions or "none",
        "output": cfg.output,
        "upsample": cfg.upsample,
        "loss_weights": {"cls": cfg.lambda_cls, "rec": cfg.lambda_rec, "id": cfg.lambda_id, **penalty},
        "precision": "bf16 autocast" if precision.enabled else "fp32",
    }
    gan = new_gan_state("stargan", mcfg, G, D, cfg, cfg.g_lr, cfg.d_lr, info)
    g_train = DistributedDataParallel(G) if dist.world > 1 else G
    d_train = DistributedDataParallel(D) if dist.world > 1 else D
    if cfg.compile:  # D is left eager: the gradient penalty needs double backward, which compile lacks
        g_train = torch.compile(g_train)

    sample_faces = load_face_crops(Path(cfg.data_dir) / "img_align_celeba", split.test_files[:8], cfg.image_size)
    sample_fn = partial(save_sample_grid, gan, run_dir, sample_faces, split.test_labels[: len(sample_faces)])
    driver = Driver.for_run(cfg, dist, gan, cfg.num_iters, sample_fn if len(sample_faces) else None, "stargan")
    start = driver.resume()
    if start == 0 and cfg.continue_from:  # a resumed run already holds its weights: the file is not read again
        gan.info.update(continue_from_state(cfg.continue_from, mcfg, gan))
        start, driver.seconds_before = gan.info["init_campaign_step"], gan.info["init_campaign_seconds"]
    elif start == 0 and cfg.init_weights:
        gan.info.update(init_from_weights(cfg.init_weights, mcfg, G, D))
        if gan.G_ema is not None:
            gan.G_ema.load_state_dict(G.state_dict())

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        return train_step(gan, g_train, d_train, draw_batch(data, schema, cfg, step, dist.rank), cfg, step, precision)

    return train_and_export(driver, start, step_fn, cfg.out, cfg.fp16_export)


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
    return {
        "init_weights": str(path),
        "init_steps": int(loaded.info.get("steps", 0)),
        "init_train_seconds": float(loaded.info.get("train_seconds", 0.0)),
        "init_output": loaded.config.output,
        "init_stages": stages_of(loaded.info),
    }


def continue_from_state(path: str, mcfg: StarGANConfig, gan: GANState) -> dict:
    """Load a training-state file (export --training-state) into the run: G from its raw G, the moving average
    from its served G, D; returns the provenance that makes the run continue its step count and totals."""
    from stargan_app.checkpoint import load_weights, read_tensors
    from stargan_app.errors import WeightsError
    from stargan_app.training.export import TRAINING_G

    loaded = load_weights(path, kind="stargan")
    raw_g = read_tensors(path, TRAINING_G)
    if loaded.config != mcfg:
        raise WeightsError(f"--continue-from {path} was trained with {loaded.config}, not this run's {mcfg}.")
    if not raw_g or "D" not in loaded.modules:
        raise WeightsError(
            f"--continue-from {path} is not a training state (no raw G or D): write one with export --training-state."
        )
    gan.G.load_state_dict(raw_g)
    gan.D.load_state_dict(loaded.modules["D"].state_dict())
    if gan.G_ema is not None:
        gan.G_ema.load_state_dict(loaded.modules["G"].state_dict())
    return {
        "init_continued_from": str(path),
        "init_campaign_step": int(loaded.info.get("steps", 0)),
        "init_campaign_seconds": float(loaded.info.get("train_seconds", 0.0)),
        "init_stages": stages_of(loaded.info),  # this run adds a stage of its own after them
    }


@torch.no_grad()
def sample_grid(G: Generator, schema: LabelSchema, faces: torch.Tensor, face_labels: torch.Tensor):
    """Rows: test faces. Columns: input, reconstruction, then every single-attribute edit.

    A masked G gets a second row per face showing each output's attention mask (white = edited), titled by
    its mean in the first tile.
    """
    dev = module_device(G)
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


def save_sample_grid(gan: GANState, run_dir: Path, faces: torch.Tensor, face_labels: torch.Tensor, step: int) -> None:
    """runs/<run>/samples/step_<step>.png from the exported generator (the EMA where the run keeps one)."""
    grid = sample_grid(gan.G_ema if gan.G_ema is not None else gan.G, gan.model_config.labels, faces, face_labels)
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    grid.save(run_dir / "samples" / f"step_{step:08d}.png")
