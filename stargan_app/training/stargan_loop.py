"""train_stargan(cfg): one WGAN-GP StarGAN loop for every label group (multi-dataset StarGAN with a mask vector)."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from stargan_app.config import LabelSchema, StarGANConfig, StarGANTrainConfig
from stargan_app.labels import full_label_vector, single_attribute_edits
from stargan_app.models import Discriminator, Generator
from stargan_app.training import losses
from stargan_app.training.data import load_celeba, load_face_crops
from stargan_app.training.runs import (
    Driver,
    hardware,
    linear_decay,
    restore_training_state,
    setup,
    step_generator,
    teardown,
    training_state,
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
    )


def train_stargan(cfg: StarGANTrainConfig) -> Path:
    """Train (or continue the run in cfg.run_dir), then export G and D to cfg.out. Returns the run dir."""
    d = setup(cfg.device)
    run_dir = Path(cfg.run_dir)
    mcfg = model_config(cfg)
    schema = mcfg.labels
    torch.manual_seed(cfg.seed)
    data = load_celeba(cfg.data_dir, schema.groups, cfg.image_size, cfg.test_size, cfg.max_images)
    if any(len(g) == 0 for g in data.group_indices):
        raise ValueError(f"a label group has no training images: sizes {[len(g) for g in data.group_indices]}")
    if d.is_main:
        write_run_config(run_dir, cfg)
        sizes = ", ".join(f"group {i}: {len(g)}" for i, g in enumerate(data.group_indices))
        print(f"{len(data.images)} training images ({sizes}), {data.skipped} skipped, {len(data.test_files)} held out")

    dev, cuda = d.device, d.device.type == "cuda"
    images = data.images.to(dev)  # the whole uint8 set lives on the device: batches never touch the host
    labels = data.labels.to(dev)
    layout = torch.channels_last if cuda else torch.contiguous_format  # channels_last only pays off on GPU
    G = Generator(mcfg).to(dev, memory_format=layout)
    D = Discriminator(mcfg).to(dev, memory_format=layout)
    init_info: dict = {}  # provenance of --init-weights, carried through resumes
    opt_g = torch.optim.Adam(G.parameters(), cfg.g_lr, (cfg.beta1, cfg.beta2), fused=cuda or None)
    opt_d = torch.optim.Adam(D.parameters(), cfg.d_lr, (cfg.beta1, cfg.beta2), fused=cuda or None)
    train_seconds = [0.0]

    def state(step: int) -> dict:
        elapsed = train_seconds[0] + time.perf_counter() - started
        return training_state("stargan", step, G, D, opt_g, opt_d, mcfg, elapsed, {
            "data": f"CelebA layout at {cfg.data_dir}: {len(data.images)} training images "
                f"({data.skipped} skipped), last {cfg.test_size} ids held out, {cfg.image_size}x{cfg.image_size}",
            "hardware": hardware(d),
            "batch_size": cfg.batch_size * d.world,
            **init_info,
        })

    def restore(s: dict) -> None:
        train_seconds[0] = restore_training_state(s, G, D, opt_g, opt_d)
        init_info.update({k: v for k, v in s.get("info", {}).items() if k.startswith("init_")})

    g_train = DistributedDataParallel(G) if d.world > 1 else G
    d_train = DistributedDataParallel(D) if d.world > 1 else D
    if cfg.compile:  # D is left eager: the gradient penalty needs double backward, which compile lacks
        g_train = torch.compile(g_train)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and cfg.amp else nullcontext()
    B = cfg.batch_size

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        gen = step_generator(cfg.seed, d.rank, step)
        group = step % len(schema.groups)
        pool = data.group_indices[group]
        pick = pool[torch.randint(len(pool), (B,), generator=gen)].to(dev, non_blocking=True)
        flip = (torch.rand(B, 1, 1, 1, generator=gen) < 0.5).to(dev, non_blocking=True)
        perm = torch.randperm(B, generator=gen).to(dev, non_blocking=True)
        alpha = torch.rand(B, 1, 1, 1, generator=gen).to(dev, non_blocking=True)
        x = images[pick].float().div_(127.5).sub_(1.0)
        x = torch.where(flip, x.flip(3), x).contiguous(memory_format=layout)
        label_org = labels[pick][:, schema.group_slice(group)]
        label_trg = label_org[perm]  # target labels: a shuffle of the real ones
        c_org = full_label_vector(schema, group, label_org)
        c_trg = full_label_vector(schema, group, label_trg)
        for opt, base in ((opt_g, cfg.g_lr), (opt_d, cfg.d_lr)):
            for pg in opt.param_groups:
                pg["lr"] = linear_decay(base, step, cfg.num_iters)

        # critic: real and fake images in one forward (D has no normalisation); the interpolates get their own
        # forward so the double backward of the gradient penalty covers only them
        with autocast:
            with torch.no_grad():
                x_fake = G(x, c_trg)
            src, cls = d_train(torch.cat([x, x_fake.to(x.dtype)]))
            x_hat = (alpha * x + (1 - alpha) * x_fake.float()).requires_grad_(True)
            src_hat, _ = d_train(x_hat)
        src_real, src_fake = src.split(B)
        d_real = losses.critic_real_loss(src_real)
        d_fake = losses.critic_fake_loss(src_fake)
        d_cls = losses.classification_loss(cls[:B, schema.group_slice(group)], label_org)
        d_gp = losses.gradient_penalty(src_hat, x_hat)
        d_loss = d_real + d_fake + cfg.lambda_cls * d_cls + cfg.lambda_gp * d_gp
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        out = {"D/real": d_real, "D/fake": d_fake, "D/cls": d_cls, "D/gp": d_gp}

        if (step + 1) % cfg.n_critic == 0:
            D.requires_grad_(False)
            with autocast:
                x_fake = g_train(x, c_trg)
                src, cls = D(x_fake)
                x_rec = g_train(x_fake, c_org)
            g_fake = -src.float().mean()
            g_cls = losses.classification_loss(cls[:, schema.group_slice(group)], label_trg)
            g_rec = losses.reconstruction_loss(x, x_rec)
            g_loss = g_fake + cfg.lambda_rec * g_rec + cfg.lambda_cls * g_cls
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            D.requires_grad_(True)
            out.update({"G/fake": g_fake, "G/cls": g_cls, "G/rec": g_rec})
        return out

    sample_faces = load_face_crops(Path(cfg.data_dir) / "img_align_celeba", data.test_files[:8], cfg.image_size)
    sample_labels = data.test_labels[: len(sample_faces)]

    def sample(step: int) -> None:
        grid = sample_grid(G, schema, sample_faces, sample_labels)
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        grid.save(run_dir / "samples" / f"step_{step:08d}.png")

    driver = Driver(
        run_dir=run_dir,
        dist=d,
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
    started = time.perf_counter()
    try:
        driver.run(start, step_fn)
    finally:
        teardown()
    if d.is_main and cfg.out:
        from stargan_app.training.export import export_run

        print(f"wrote {export_run(run_dir, cfg.out, fp16=cfg.fp16_export)}")
    return run_dir


def init_from_weights(path: str, mcfg: StarGANConfig, G: Generator, D: Discriminator) -> dict:
    """Copy G and D from a stargan weights file of the same architecture; returns provenance for the run's info."""
    from stargan_app.checkpoint import load_weights
    from stargan_app.errors import WeightsError

    loaded = load_weights(path, kind="stargan")
    if loaded.config != mcfg:
        raise WeightsError(f"--init-weights {path} was trained with {loaded.config}, not this run's {mcfg}.")
    if "D" not in loaded.modules:
        raise WeightsError(f"--init-weights {path} has no discriminator to continue training from.")
    G.load_state_dict(loaded.modules["G"].state_dict())  # load_weights already gives fp32 modules
    D.load_state_dict(loaded.modules["D"].state_dict())
    return {"init_weights": str(path), "init_steps": int(loaded.info.get("steps", 0)),
            "init_train_seconds": float(loaded.info.get("train_seconds", 0.0))}


@torch.no_grad()
def sample_grid(G: Generator, schema: LabelSchema, faces: torch.Tensor, face_labels: torch.Tensor):
    """Rows: test faces. Columns: input, reconstruction, then every single-attribute edit."""
    from stargan_app.imaging import make_grid, tensor_to_pil

    dev = next(G.parameters()).device
    tiles = []
    for x, lab in zip(faces, face_labels):
        source = dict(zip(schema.attributes, lab.tolist()))
        edits = single_attribute_edits(schema, source)
        recon_c = full_label_vector(schema, 0, lab[schema.group_slice(0)][None])[0]
        cs = torch.stack([recon_c] + [c for _, c in edits]).to(dev)
        outs = G(x[None].to(dev).expand(len(cs), -1, -1, -1), cs)
        tiles += [tensor_to_pil(x)] + [tensor_to_pil(o) for o in outs]
    return make_grid(tiles, ncols=len(tiles) // len(faces))
