"""StarGAN generator and discriminator, layer for layer as in yunjey/stargan (same state-dict keys)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stargan_app.config import StarGANConfig


class InstanceNorm2d(nn.InstanceNorm2d):
    """InstanceNorm that always normalises with instance statistics, in train and eval mode alike."""

    # Official checkpoints carry running buffers (track_running_stats=True); they are kept for a
    # bit-exact round trip but never used: with them, .eval() would switch to running stats and ruin faces.
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class ResidualBlock(nn.Module):
    """Residual block with instance normalisation."""

    def __init__(self, dim: int, track_running_stats: bool = False):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False),
            InstanceNorm2d(dim, affine=True, track_running_stats=track_running_stats),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False),
            InstanceNorm2d(dim, affine=True, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """Image-to-image generator conditioned on a label vector c."""

    def __init__(self, cfg: StarGANConfig):
        super().__init__()
        self.cfg = cfg
        trs = cfg.track_running_stats
        dim = cfg.conv_dim
        layers: list[nn.Module] = [
            nn.Conv2d(3 + cfg.labels.c_dim, dim, 7, 1, 3, bias=False),
            InstanceNorm2d(dim, affine=True, track_running_stats=trs),
            nn.ReLU(inplace=True),
        ]
        for _ in range(2):
            layers += [
                nn.Conv2d(dim, dim * 2, 4, 2, 1, bias=False),
                InstanceNorm2d(dim * 2, affine=True, track_running_stats=trs),
                nn.ReLU(inplace=True),
            ]
            dim *= 2
        layers += [ResidualBlock(dim, trs) for _ in range(cfg.g_repeat_num)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=False),
                InstanceNorm2d(dim // 2, affine=True, track_running_stats=trs),
                nn.ReLU(inplace=True),
            ]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c.to(x.dtype).view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


class Discriminator(nn.Module):
    """PatchGAN critic with a real/fake head (conv1) and an attribute head (conv2)."""

    def __init__(self, cfg: StarGANConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.d_conv_dim
        layers: list[nn.Module] = [nn.Conv2d(3, dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        for _ in range(1, cfg.d_repeat_num):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(dim, cfg.labels.cls_dim, cfg.image_size // 2**cfg.d_repeat_num, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.conv1(h), self.conv2(h).flatten(1)
