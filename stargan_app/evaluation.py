"""`app.py eval`: measure weights with independent reference classifiers.

CGAN: a small CNN trained on the real training split judges class accuracy of samples, and its penultimate
features give a diversity ratio (within-class spread of samples / that of real test images).
The StarGAN evaluation lives in evaluation_stargan.py and reuses the classifier helpers here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Tunables (tests lower them).
CGAN_CLASSIFIER_EPOCHS = 2
BATCH_SIZE = 128
GEN_BATCH = 100
DIVERSITY_MAX_PER_CLASS = 500  # pairwise distances on at most this many images per class
SEED = 0
CLASSIFIER_VERSION = 2  # bump when SmallCNN changes (invalidates cached classifiers)


# ---------------------------------------------------------------- reference classifier


class SmallCNN(nn.Module):
    """2 conv + 2 fc; `features` is the penultimate (128-d) layer."""

    def __init__(self, in_channels: int, n_outputs: int, width: int = 32):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7),
        )
        self.fc1 = nn.Linear(2 * width * 49, 128)
        self.fc2 = nn.Linear(128, n_outputs)
        self.meta = {"in_channels": in_channels, "n_outputs": n_outputs, "width": width}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc1(self.conv(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N,H,W) / (N,C,H,W) -> float (N,C,H,W) in [-1, 1]; float input is assumed to be in [-1, 1] already."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1.0
    return images.float()


def train_classifier(images: torch.Tensor, targets: torch.Tensor, *, multilabel: bool, epochs: int, seed: int = SEED,
                     lr: float = 1e-3, batch_size: int = BATCH_SIZE) -> SmallCNN:
    """Train a SmallCNN: cross-entropy on int64 class targets, or BCE on float multi-label targets."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n_out = targets.size(1) if multilabel else int(targets.max()) + 1
    model = SmallCNN(images.size(1) if images.dim() == 4 else 1, n_out)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(max(1, epochs)):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            x, y = to_float_images(images[idx]), targets[idx]
            logits = model(x)
            loss = F.binary_cross_entropy_with_logits(logits, y.float()) if multilabel else F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def train_digit_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = CGAN_CLASSIFIER_EPOCHS,
                           seed: int = SEED) -> SmallCNN:
    """Class classifier for (N,28,28) uint8 or (N,1,28,28) [-1,1] images with int64 labels."""
    return train_classifier(images, labels.long(), multilabel=False, epochs=epochs, seed=seed)


@torch.inference_mode()
def _batched(fn, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([fn(to_float_images(images[i : i + batch_size])) for i in range(0, len(images), batch_size)])


def predict_logits(classifier: SmallCNN, images: torch.Tensor) -> torch.Tensor:
    return _batched(classifier.eval(), images)


def penultimate_features(classifier: SmallCNN, images: torch.Tensor) -> torch.Tensor:
    return _batched(classifier.eval().features, images)


def class_accuracy(classifier: SmallCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images whose argmax class equals the label."""
    if len(images) == 0:
        return float("nan")
    return float((predict_logits(classifier, images).argmax(1) == labels.long()).float().mean())


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean L2 distance over all distinct pairs (0 for fewer than two rows)."""
    n = len(features)
    if n < 2:
        return 0.0
    d = torch.cdist(features.double(), features.double())
    return float(d.sum() / (n * (n - 1)))


def diversity_ratio(classifier: SmallCNN, samples: torch.Tensor, sample_labels: torch.Tensor, real: torch.Tensor,
                    real_labels: torch.Tensor, max_per_class: int = DIVERSITY_MAX_PER_CLASS) -> tuple[float, dict[int, float]]:
    """Per class: mean pairwise feature distance of samples / that of real images; returns (mean ratio, per class)."""
    per_class: dict[int, float] = {}
    for k in sorted(set(sample_labels.tolist()) & set(real_labels.tolist())):
        fs = penultimate_features(classifier, samples[sample_labels == k][:max_per_class])
        fr = penultimate_features(classifier, real[real_labels == k][:max_per_class])
        denom = mean_pairwise_distance(fr)
        per_class[int(k)] = mean_pairwise_distance(fs) / denom if denom > 0 else float("nan")
    values = [v for v in per_class.values() if v == v]
    return (float(np.mean(values)) if values else float("nan")), per_class


def _cached(path: Path, build, make_empty) -> tuple[SmallCNN, bool]:
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


def _print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [header] + [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(title)
    for j, r in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            print("  " + "  ".join("-" * w for w in widths))


# ---------------------------------------------------------------- CGAN


def sample_per_class(sampler, per_class: int, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """per_class seeded samples of every class: ((N,1,28,28) in [-1,1], int64 labels)."""
    labels = torch.arange(len(sampler.classes)).repeat_interleave(per_class)
    gen = torch.Generator().manual_seed(seed)
    out = []
    dev = next(sampler.G.parameters()).device
    with torch.inference_mode():
        for i in range(0, len(labels), GEN_BATCH):
            y = labels[i : i + GEN_BATCH]
            z = torch.randn(len(y), sampler.config.noise_dim, generator=gen)
            out.append(sampler.G(z.to(dev), y.to(dev)).float().cpu())
    return torch.cat(out), labels


def eval_cgan(args: argparse.Namespace) -> dict[str, Any]:
    from stargan_app.inference import ClassSampler
    from stargan_app.training.data import load_idx_dataset

    dataset = args.dataset
    sampler = ClassSampler.from_pretrained(args.weights or dataset)
    data_dir = args.data_dir or None
    x_train, y_train = load_idx_dataset(dataset, data_dir, "train")
    x_test, y_test = load_idx_dataset(dataset, data_dir, "test")
    cache = Path(args.cache_dir) / f"cgan_{dataset}_classifier_v{CLASSIFIER_VERSION}_e{CGAN_CLASSIFIER_EPOCHS}_n{len(x_train)}.pt"
    n_classes = int(y_train.max()) + 1
    t0 = time.time()
    clf, cached = _cached(cache, lambda: train_digit_classifier(x_train, y_train, CGAN_CLASSIFIER_EPOCHS),
                          lambda: SmallCNN(1, n_classes))
    train_s = time.time() - t0
    real_acc = class_accuracy(clf, x_test, y_test)

    samples, labels = sample_per_class(sampler, int(args.per_class))
    preds = predict_logits(clf, samples).argmax(1)
    per_class_acc = {sampler.classes[k]: float((preds[labels == k] == k).float().mean()) for k in range(len(sampler.classes))}
    mean_ratio, per_class_div = diversity_ratio(clf, samples, labels, x_test, y_test)

    result = {
        "model": "cgan",
        "dataset": dataset,
        "weights": sampler.info.get("path"),
        "per_class_samples": int(args.per_class),
        "classifier": {"test_accuracy": real_acc, "cached": cached, "cache": str(cache), "train_seconds": train_s},
        "class_accuracy": per_class_acc,
        "mean_class_accuracy": float(np.mean(list(per_class_acc.values()))),
        "diversity_ratio": {sampler.classes[k]: v for k, v in per_class_div.items()},
        "mean_diversity_ratio": mean_ratio,
    }
    rows = [[name, per_class_acc[name], result["diversity_ratio"].get(name, float("nan"))] for name in sampler.classes]
    rows.append(["MEAN", result["mean_class_accuracy"], mean_ratio])
    print(f"reference classifier test accuracy: {real_acc:.4f} ({'cached' if cached else 'trained'}: {cache})")
    _print_table(f"CGAN {dataset}: {args.per_class} samples per class", ["class", "accuracy", "diversity"], rows)
    return result
