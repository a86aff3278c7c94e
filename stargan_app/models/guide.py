"""The attribute guide: a plain CNN (four stride-2 blocks, global average pool, one logit per attribute).

Trained adversarially (training/guide_loop.py), its input gradients follow real features, so G can raise its score
only by drawing them.
"""

from __future__ import annotations

import torch
from torch import nn

from stargan_app.config import GuideConfig


class AttributeGuide(nn.Module):
    def __init__(self, cfg: GuideConfig):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i in range(cfg.blocks):
            width = cfg.width * 2**i
            layers += [
                nn.Conv2d(channels, width, 3, 1, 1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 4, 2, 1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(channels, len(cfg.attributes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, n_attributes) logits."""
        return self.head(self.trunk(x).mean((2, 3)))
