"""train_stargan(cfg): one StarGAN loop for every label group (mask vector), whichever recipe (training/recipes.py)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from stargan_app.checkpoint import load_frozen_guide
from stargan_app.config import LabelSchema, StarGANConfig
from stargan_app.data.celeba import TrainingFaces, load_face_crops, load_training_faces
from stargan_app.errors import WeightsError
from stargan_app.models import Discriminator, Generator
from stargan_app.training.batches import Batch, TrainingData, draw_batch
from stargan_app.training.devices import Autocast, Dist, autocast_for, hardware, setup
from stargan_app.training.options import StarGANTrainConfig
from stargan_app.training.recipes import RECIPES, Recipe, recipe_for
from stargan_app.training.resume import GANState
from stargan_app.training.runs import (
    Driver,
    frozen,
    linear_decay,
    new_gan_state,
    optimizer_step,
    train_and_export,
    update_ema,
    write_run_config,
)
from stargan_app.training.samples import save_sample_grid
from stargan_app.training.warm_start import continue_from_state, init_from_weights

MODEL_FIELDS = ("image_size", "conv_dim", "g_repeat_num", "d_conv_dim", "d_repeat_num", "output", "upsample")


def model_config(cfg: StarGANTrainConfig) -> StarGANConfig:
    """The model a run trains: its MODEL_FIELDS, its label groups and its recipe's D head."""
    groups = tuple(tuple(a for a in g.split(",") if a) for g in (cfg.group_a, cfg.group_b))
    labels = LabelSchema(groups=tuple(g for g in groups if g))
    cond_head = RECIPES[cfg.recipe].d_has_cond_head
    return StarGANConfig(**{f: getattr(cfg, f) for f in MODEL_FIELDS}, labels=labels, cond_head=cond_head)


def train_step(
    gan: GANState,
    g_train: nn.Module,
    d_train: nn.Module,
    batch: Batch,
    recipe: Recipe,
    step: int,
    precision: Autocast,
) -> dict[str, torch.Tensor]:
    """One step of the paper's algorithm: D on every step, G (and its EMA) when the recipe says (every n_critic-th
    step, after D's warm-up); learning rates decayed linearly.

    g_train and d_train are the modules the passes run through (gan.G and gan.D, or their DDP/compiled wrappers).
    """
    cfg = recipe.cfg
    for opt, base in ((gan.opt_g, cfg.g_lr), (gan.opt_d, cfg.d_lr)):
        for group in opt.param_groups:
            group["lr"] = linear_decay(base, step, cfg.num_iters)
    trains_g = recipe.trains_g(step)
    x_fake = None
    if trains_g:  # G's edit, once a step: D trains on it detached, G's loss keeps its graph (G is unchanged between)
        with precision:
            x_fake = g_train(batch.x, batch.c_trg)
    d_loss, logs = recipe.d_loss(d_train, gan.G, batch, step, precision, x_fake)
    optimizer_step(gan.opt_d, d_loss)
    if trains_g:
        with frozen(gan.D):
            g_loss, g_logs = recipe.g_loss(g_train, gan.D, batch, step, precision, x_fake)
            optimizer_step(gan.opt_g, g_loss)
        if gan.G_ema is not None:
            # a residual warm start restarts the average at the identity: its decay ramps from that step (stylegan2-ada)
            ramp_from = gan.info.get("init_ema_ramp_from")
            warmup = ramp_from is not None or not cfg.init_weights
            update_ema(gan.G_ema, gan.G, cfg.ema_decay, step - (ramp_from or 0), warmup=warmup)
        logs.update(g_logs)
    return logs


def training_faces(cfg: StarGANTrainConfig, schema: LabelSchema, dist: Dist) -> TrainingFaces:
    """The run's training faces, refused when a label group has none; the main process saves the run's config."""
    split = load_training_faces(cfg.data_dir, schema.groups, cfg.image_size, cfg.test_size, cfg.max_images)
    sizes = [len(g) for g in split.group_indices]
    if not all(sizes):
        raise ValueError(f"a label group has no training images: sizes {sizes}")
    if dist.is_main:
        write_run_config(Path(cfg.run_dir), cfg)
        groups = ", ".join(f"group {i}: {n}" for i, n in enumerate(sizes))
        print(
            f"{len(split.images)} training images ({groups}), {split.skipped} skipped, {len(split.test_files)} held out"
        )
    return split


def run_info(
    cfg: StarGANTrainConfig, split: TrainingFaces, dist: Dist, recipe: Recipe, guide: dict | None, precision: Autocast
) -> dict:
    """The run's provenance, as its checkpoints and exported files carry it (its stage's keys among them)."""
    return {
        "data": f"CelebA '{Path(cfg.data_dir).resolve().name}': {len(split.images)} training images ({split.skipped} "
        f"skipped), last {cfg.test_size} ids held out, {cfg.image_size}x{cfg.image_size}",
        "hardware": hardware(dist),
        "processes": dist.world,
        "threads": torch.get_num_threads(),
        "batch_size": cfg.batch_size * dist.world,
        "recipe": cfg.recipe,
        "n_critic": recipe.n_critic,
        "d_warmup": cfg.d_warmup,
        "augment": cfg.augment or "none",
        "output": cfg.output,
        "upsample": cfg.upsample,
        "loss_weights": recipe.loss_weights(),
        **({"guide": guide} if guide else {}),
        "precision": "bf16 autocast" if precision.enabled else "fp32",
    }


def start_step(cfg: StarGANTrainConfig, driver: Driver, gan: GANState, guide: dict | None) -> int:
    """Where the run starts: its newest checkpoint (with the guide it was trained with), else the training state it
    continues (its step), else step 0 from a weights file or from scratch."""
    start = driver.resume()
    trained_with = (gan.resumed_info.get("guide") or {}).get("sha256")
    if start and trained_with != (guide or {}).get("sha256"):  # the objective must not change under a run
        raise WeightsError(
            f"{cfg.run_dir} was trained with guide {gan.resumed_info.get('guide')}, not {guide}: resume it "
            "with the guide it was trained with, or start a new run from its state (--continue-from)."
        )
    if start == 0 and cfg.continue_from:  # a resumed run already holds its weights: the file is not read again
        gan.info.update(continue_from_state(cfg.continue_from, gan.model_config, gan))
        start, driver.seconds_before = gan.info["init_campaign_step"], gan.info["init_campaign_seconds"]
    elif start == 0 and cfg.init_weights:
        gan.info.update(init_from_weights(cfg.init_weights, gan.model_config, gan.G, gan.D))
        if gan.G_ema is not None:
            gan.G_ema.load_state_dict(gan.G.state_dict())
    return start


def train_stargan(cfg: StarGANTrainConfig) -> Path:
    """Train (or continue the run in cfg.run_dir), then export G and D to cfg.out. Returns the run dir."""
    dist = setup(cfg.device)
    mcfg = model_config(cfg)
    schema, dev = mcfg.labels, dist.device
    torch.manual_seed(cfg.seed)
    split = training_faces(cfg, schema, dist)
    guide, provenance = load_frozen_guide(cfg.guide, schema.attributes, dev) if cfg.guide else (None, None)
    recipe = recipe_for(cfg, guide)
    precision = autocast_for(dev, cfg.amp)
    # channels_last pays off on GPU and with bf16 on CPU (oneDNN's blocked kernels); fp32 CPU convs are faster without
    layout = torch.channels_last if dev.type == "cuda" or precision.enabled else torch.contiguous_format
    data = TrainingData(split.images.to(dev), split.labels.to(dev), split.group_indices, layout)
    G = Generator(mcfg).to(dev, memory_format=layout)
    D = Discriminator(mcfg).to(dev, memory_format=layout)
    info = run_info(cfg, split, dist, recipe, provenance, precision)
    gan = new_gan_state("stargan", mcfg, G, D, cfg, cfg.g_lr, cfg.d_lr, info)
    g_train = DistributedDataParallel(G) if dist.world > 1 else G
    d_train = DistributedDataParallel(D) if dist.world > 1 else D
    if cfg.compile:  # D is left eager: the gradient penalty needs double backward, which compile lacks
        g_train = torch.compile(g_train)
    faces = load_face_crops(split.folder, split.test_files[:8], cfg.image_size)
    sample_fn = partial(save_sample_grid, gan, Path(cfg.run_dir), faces, split.test_labels[: len(faces)])
    driver = Driver(cfg, dist, gan, cfg.num_iters, sample_fn if len(faces) else None, "stargan")
    start = start_step(cfg, driver, gan, provenance)

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        batch = draw_batch(data, schema, cfg, step, dist.rank)
        return train_step(gan, g_train, d_train, batch, recipe, step, precision)

    return train_and_export(driver, start, step_fn, cfg.out, cfg.fp16_export)
