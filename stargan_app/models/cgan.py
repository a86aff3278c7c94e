"""Conditional MLP GAN for 28x28 class-conditional images (MNIST, Fashion-MNIST)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from stargan_app.config import CGANConfig


def hidden_layers(
    width: int, widths: tuple[int, ...], middle: Callable[[int], nn.Module]
) -> tuple[list[nn.Module], int]:
    """Per hidden width: Linear, then middle(width) from the second layer on, then LeakyReLU(0.2).

    Returns the layers and the last width. (The layer order fixes the state-dict keys of the shipped weights.)
    """
    layers: list[nn.Module] = []
    for i, out in enumerate(widths):
        layers.append(nn.Linear(width, out))
        if i > 0:
            layers.append(middle(out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        width = out
    return layers, width


class CGANGenerator(nn.Module):
    """MLP generator: noise concatenated with a label embedding -> image in [-1, 1]."""

    def __init__(self, cfg: CGANConfig):
        super().__init__()
        self.cfg = cfg
        n = len(cfg.classes)
        self.label_emb = nn.Embedding(n, n)
        layers, width = hidden_layers(cfg.noise_dim + n, cfg.g_hidden, nn.BatchNorm1d)
        layers += [nn.Linear(width, cfg.image_size**2), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.model(torch.cat([z, self.label_emb(labels)], dim=1))
        return x.view(-1, 1, self.cfg.image_size, self.cfg.image_size)


class CGANDiscriminator(nn.Module):
    """MLP discriminator: image concatenated with a label embedding -> real/fake logit (+ optional projection)."""

    def __init__(self, cfg: CGANConfig):
        super().__init__()
        self.cfg = cfg
        n = len(cfg.classes)
        self.label_emb = nn.Embedding(n, n)
        layers, width = hidden_layers(cfg.image_size**2 + n, cfg.d_hidden, lambda _: nn.Dropout(0.4))
        layers.append(nn.Linear(width, 1))
        self.model = nn.Sequential(*layers)
        self.projection = nn.Embedding(n, width) if cfg.d_projection else None

    def forward(self, img: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.model[:-1](torch.cat([img.flatten(1), self.label_emb(labels)], dim=1))
        logit = self.model[-1](h).squeeze(1)
        if self.projection is not None:
            logit = logit + (self.projection(labels) * h).sum(1)
        return logit
