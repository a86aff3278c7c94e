"""`app.py eval cgan`: class accuracy and diversity of a conditional GAN's samples.

A SmallCNN trained on the real training split judges the class of every sample; its penultimate features give a
diversity ratio (within-class spread of samples / that of real test images).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stargan_app.evaluation.classifier import (
    SEED,
    SmallCNN,
    cached_classifier,
    penultimate_features,
    predict_logits,
    print_table,
    train_classifier,
)

CGAN_CLASSIFIER_EPOCHS = 2  # tests lower it
DIVERSITY_MAX_PER_CLASS = 500  # pairwise distances on at most this many images per class
CLASSIFIER_VERSION = 2  # bump when SmallCNN changes (invalidates cached classifiers)


def train_digit_classifier(
    images: torch.Tensor, labels: torch.Tensor, epochs: int = CGAN_CLASSIFIER_EPOCHS, seed: int = SEED
) -> SmallCNN:
    """Class classifier for (N,28,28) uint8 or (N,1,28,28) [-1,1] images with int64 labels."""
    return train_classifier(images, labels.long(), multilabel=False, epochs=epochs, seed=seed)


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


def diversity_ratio(
    classifier: SmallCNN,
    samples: torch.Tensor,
    sample_labels: torch.Tensor,
    real: torch.Tensor,
    real_labels: torch.Tensor,
    max_per_class: int = DIVERSITY_MAX_PER_CLASS,
) -> tuple[float, dict[int, float]]:
    """Per class: mean pairwise feature distance of samples / that of real images; returns (mean ratio, per class)."""
    per_class: dict[int, float] = {}
    for k in sorted(set(sample_labels.tolist()) & set(real_labels.tolist())):
        fs = penultimate_features(classifier, samples[sample_labels == k][:max_per_class])
        fr = penultimate_features(classifier, real[real_labels == k][:max_per_class])
        denom = mean_pairwise_distance(fr)
        per_class[int(k)] = mean_pairwise_distance(fs) / denom if denom > 0 else float("nan")
    values = [v for v in per_class.values() if v == v]
    return (float(np.mean(values)) if values else float("nan")), per_class


def sample_per_class(sampler: Any, per_class: int, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """per_class seeded samples of every class from a ClassSampler: ((N,1,28,28) in [-1,1], int64 labels)."""
    labels = torch.arange(len(sampler.classes)).repeat_interleave(per_class)
    return sampler.generate(labels, seed), labels


def eval_cgan(
    dataset: str = "mnist",
    weights: str | None = None,
    data_dir: str = "",
    per_class: int = 1000,
    cache_dir: str = "runs/eval_cache",
) -> dict[str, Any]:
    """All figures for one cgan weights file (None: the shipped one for `dataset`); prints a table, returns a dict.

    data_dir: the idx folder ('' downloads with torchvision).
    """
    from stargan_app.data.idx import load_idx_dataset
    from stargan_app.inference import ClassSampler

    sampler = ClassSampler.from_pretrained(weights or dataset)
    x_train, y_train = load_idx_dataset(dataset, data_dir or None, "train")
    x_test, y_test = load_idx_dataset(dataset, data_dir or None, "test")
    cache = (
        Path(cache_dir)
        / f"cgan_{dataset}_classifier_v{CLASSIFIER_VERSION}_e{CGAN_CLASSIFIER_EPOCHS}_n{len(x_train)}.pt"
    )
    n_classes = int(y_train.max()) + 1
    t0 = time.time()
    clf, cached = cached_classifier(
        cache, lambda: train_digit_classifier(x_train, y_train, CGAN_CLASSIFIER_EPOCHS), lambda: SmallCNN(1, n_classes)
    )
    train_s = time.time() - t0
    real_acc = class_accuracy(clf, x_test, y_test)

    samples, labels = sample_per_class(sampler, per_class)
    preds = predict_logits(clf, samples).argmax(1)
    per_class_acc = {
        sampler.classes[k]: float((preds[labels == k] == k).float().mean()) for k in range(len(sampler.classes))
    }
    mean_ratio, per_class_div = diversity_ratio(clf, samples, labels, x_test, y_test)

    result = {
        "model": "cgan",
        "dataset": dataset,
        "weights": sampler.info.get("path"),
        "per_class_samples": per_class,
        "classifier": {"test_accuracy": real_acc, "cached": cached, "cache": str(cache), "train_seconds": train_s},
        "class_accuracy": per_class_acc,
        "mean_class_accuracy": float(np.mean(list(per_class_acc.values()))),
        "diversity_ratio": {sampler.classes[k]: v for k, v in per_class_div.items()},
        "mean_diversity_ratio": mean_ratio,
    }
    rows = [[name, per_class_acc[name], result["diversity_ratio"].get(name, float("nan"))] for name in sampler.classes]
    rows.append(["MEAN", result["mean_class_accuracy"], mean_ratio])
    print(f"reference classifier test accuracy: {real_acc:.4f} ({'cached' if cached else 'trained'}: {cache})")
    print_table(f"CGAN {dataset}: {per_class} samples per class", ["class", "accuracy", "diversity"], rows)
    return result
