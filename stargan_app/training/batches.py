"""The step's batch: real faces of one label group, their labels and targets, a pure function of the step."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from stargan_app.config import LabelSchema
from stargan_app.imaging import to_model_range
from stargan_app.labels import full_label_vector
from stargan_app.training.options import StarGANTrainConfig
from stargan_app.training.runs import step_generator


@dataclass
class TrainingData:
    """The training set on the training device (uint8, so a batch never touches the host) and its group split."""

    images: torch.Tensor  # (N, 3, S, S) uint8
    labels: torch.Tensor  # (N, n_attributes) in {0, 1}
    group_indices: list[torch.Tensor]  # per label group, rows of `images` (on the CPU: indexed by the step's generator)
    layout: torch.memory_format  # memory format of the batches (channels_last where it pays)


@dataclass
class Batch:
    """One step's data: real images of one label group, their labels, and target labels."""

    x: torch.Tensor  # (B, 3, S, S) in [-1, 1]
    label_org: torch.Tensor  # (B, n) the group's real labels
    label_trg: torch.Tensor  # (B, n) target labels
    c_org: torch.Tensor  # (B, c_dim) full label vectors (group labels, zeros elsewhere, mask one-hot)
    c_trg: torch.Tensor
    cls_slice: slice  # the group's columns in D's classification and conditional outputs
    alpha: torch.Tensor  # (B, 1, 1, 1) interpolation weights for the WGAN-GP penalty
    aug_gen: torch.Generator = field(default_factory=torch.Generator)  # DiffAugment's draws (draw_batch: the step's)


def draw_batch(data: TrainingData, schema: LabelSchema, cfg: StarGANTrainConfig, step: int, rank: int) -> Batch:
    """Step `step`'s batch: groups alternate by step; images, flips, targets and GP weights all come from the step's
    own generator, so a resumed run draws exactly what an uninterrupted one would."""
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
    label_trg = label_org[perm]  # the paper's targets: a shuffle of the real labels
    return Batch(
        x,
        label_org,
        label_trg,
        full_label_vector(schema, group, label_org),
        full_label_vector(schema, group, label_trg),
        schema.group_slice(group),
        alpha,
        gen,
    )
