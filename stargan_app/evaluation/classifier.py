"""The reference classifier both evaluations judge with: a small CNN, its training, batched inference, a disk cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stargan_app.imaging import to_model_range

BATCH_SIZE = 128
SEED = 0


class SmallCNN(nn.Module):
    """2 conv + 2 fc; `features` is the penultimate (128-d) layer."""

    def __init__(self, in_channels: int, n_outputs: int, width: int = 32):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7),
        )
        self.fc1 = nn.Linear(2 * width * 49, 128)
        self.fc2 = nn.Linear(128, n_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc1(self.conv(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N,H,W) / (N,C,H,W) -> float (N,C,H,W) in [-1, 1]; float input is assumed to be in [-1, 1] already."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    return to_model_range(images) if images.dtype == torch.uint8 else images.float()


def train_classifier(
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    multilabel: bool,
    epochs: int,
    seed: int = SEED,
    lr: float = 1e-3,
    batch_size: int = BATCH_SIZE,
    balanced: bool = False,
    flips: bool = False,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> SmallCNN:
    """Train a SmallCNN: cross-entropy on int64 class targets, or BCE on float multi-label targets.

    balanced: weight each attribute's positives by its negative/positive ratio (multi-label only).
    flips: mirror each image left-right with probability 0.5.
    augment: (images in [-1, 1], the training generator) -> images, applied to every batch after the flips.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n_out = targets.size(1) if multilabel else int(targets.max()) + 1
    model = SmallCNN(images.size(1) if images.dim() == 4 else 1, n_out)
    pos_weight = None
    if balanced:
        pos = targets.float().mean(0).clamp(1e-3, 1 - 1e-3)
        pos_weight = (1 - pos) / pos
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(max(1, epochs)):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            x, y = to_float_images(images[idx]), targets[idx]
            if flips:
                x = torch.where(torch.rand(len(idx), 1, 1, 1, generator=gen) < 0.5, x.flip(3), x)
            if augment is not None:
                x = augment(x, gen)
            logits = model(x)
            if multilabel:
                loss = F.binary_cross_entropy_with_logits(logits, y.float(), pos_weight=pos_weight)
            else:
                loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.inference_mode()
def _batched(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([fn(to_float_images(images[i : i + batch_size])) for i in range(0, len(images), batch_size)])


def predict_logits(classifier: SmallCNN, images: torch.Tensor) -> torch.Tensor:
    return _batched(classifier.eval(), images)


def penultimate_features(classifier: SmallCNN, images: torch.Tensor) -> torch.Tensor:
    return _batched(classifier.eval().features, images)


def cached_classifier(
    path: Path, build: Callable[[], SmallCNN], make_empty: Callable[[], SmallCNN]
) -> tuple[SmallCNN, bool]:
    """Load a cached classifier state dict, or build, save and return one; returns (model, was_cached)."""
    if path.is_file():
        model = make_empty()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval(), True
    model = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model, False


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [header] + [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(title)
    for j, r in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            print("  " + "  ".join("-" * w for w in widths))
