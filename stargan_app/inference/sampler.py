"""ClassSampler: seeded class-conditional samples and grids from a conditional GAN."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from stargan_app.checkpoint import load_weights, resolve_weights
from stargan_app.config import CGANConfig
from stargan_app.errors import LabelError
from stargan_app.imaging import make_grid, tensors_to_pils
from stargan_app.models import CGANGenerator
from stargan_app.runtime import module_device

MAX_SAMPLES = 256


class ClassSampler:
    def __init__(self, generator: CGANGenerator, info: dict | None = None):
        self.G = generator.eval()
        self.config: CGANConfig = generator.cfg
        self.info = info or {}

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "mnist", device: str = "cpu") -> ClassSampler:
        """ "mnist", "fashion" (the shipped weights) or a path to a cgan weights file."""
        loaded = load_weights(resolve_weights(name_or_path, "mnist"), kind="cgan", device=device)
        return cls(loaded.modules["G"], info={**loaded.info, "path": str(loaded.path)})

    @property
    def classes(self) -> list[str]:
        return list(self.config.classes)

    def class_index(self, label: int | str) -> int:
        if isinstance(label, str) and label in self.config.classes:
            return self.config.classes.index(label)
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(self.config.classes):
            return label
        raise LabelError(f"Unknown class {label!r}. Classes: {', '.join(self.config.classes)}.")

    @torch.inference_mode()
    def generate(self, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """One sample per class index in `labels`, as a (N, 1, S, S) tensor in [-1, 1]; one seed, one noise."""
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(len(labels), self.config.noise_dim, generator=gen)
        dev = module_device(self.G)
        return self.G(z.to(dev), labels.to(dev)).cpu()

    def sample(self, label: int | str, n: int = 16, seed: int = 0) -> list[Image.Image]:
        """n images of one class; the same seed gives the same images."""
        if not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
            raise LabelError(f"The number of samples must be between 1 and {MAX_SAMPLES}, got {n!r}.")
        y = torch.full((n,), self.class_index(label), dtype=torch.long)
        return tensors_to_pils(self.generate(y, seed))

    def grid(self, n_per_class: int = 8, seed: int = 0) -> Image.Image:
        """One image: a row per class, n_per_class samples each."""
        if not isinstance(n_per_class, int) or not 1 <= n_per_class <= 32:
            raise LabelError(f"Samples per class must be between 1 and 32, got {n_per_class!r}.")
        y = torch.arange(len(self.config.classes)).repeat_interleave(n_per_class)
        return make_grid(tensors_to_pils(self.generate(y, seed)), ncols=n_per_class)
