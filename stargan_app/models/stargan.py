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


class BlurredConvTranspose2d(nn.ConvTranspose2d):
    """Transposed conv followed by a fixed separable [1, 2, 1] / 4 low-pass filter; same parameters and state-dict
    keys as nn.ConvTranspose2d, so official-layout weights load into it.

    The filter's zero at the Nyquist frequency removes the period-2 checkerboard that a stride-2 transposed conv's
    uneven kernel overlap leaves (Odena et al. 2016; StyleGAN blurs after upsampling for the same reason).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur_kernel", (k[:, None] * k[None, :] / 16.0)[None, None], persistent=False)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        y = super().forward(x, output_size)
        # replicate-pad by one pixel, written as concatenation: the same values as F.pad(mode="replicate"), whose
        # backward inductor miscompiles on the CPU (a stride assertion in replication_pad2d_backward, torch 2.14)
        y = torch.cat([y[:, :, :1], y, y[:, :, -1:]], 2)
        y = torch.cat([y[:, :, :, :1], y, y[:, :, :, -1:]], 3)
        return F.conv2d(y, self.blur_kernel.to(y.dtype).expand(y.size(1), 1, 3, 3), groups=y.size(1))


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
    """Image-to-image generator conditioned on a label vector c.

    output="image" is the official layout. output="residual" ends in the official last conv without tanh and returns
    clamp(x + Δ, -1, 1): a zero last conv is the identity, so G only has to learn the change (US-GAN). The clamp
    bounds what reaches D, the reconstruction and the app to the image range; it passes Δ's gradient wherever the
    output is inside it.
    """

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
        deconv = BlurredConvTranspose2d if cfg.upsample == "deconv_blur" else nn.ConvTranspose2d
        for _ in range(2):
            layers += [
                deconv(dim, dim // 2, 4, 2, 1, bias=False),
                InstanceNorm2d(dim // 2, affine=True, track_running_stats=trs),
                nn.ReLU(inplace=True),
            ]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, 7, 1, 3, bias=False)]  # the same last conv for both outputs: weights carry over
        if cfg.output == "image":
            layers += [nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        cmap = c.to(x.dtype).view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        h = self.main(torch.cat([x, cmap], dim=1))
        if self.cfg.output == "residual":
            h = (x + h.to(x.dtype)).clamp(-1.0, 1.0)  # in x's precision: Δ = 0 returns x exactly
        return h


class Discriminator(nn.Module):
    """PatchGAN critic with a real/fake head (conv1), an attribute head (conv2) and, with cfg.cond_head, a conditional
    real/fake head (conv3): per attribute and value, whether the image is a real face with that value."""

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
        # no spectral norm: on a 2x2 map it kept the head from learning the attributes at all
        self.conv3 = nn.Conv2d(dim, 2 * cfg.labels.cls_dim, 3, 1, 1) if cfg.cond_head else None

    def forward(self, x: torch.Tensor, with_cond: bool = False):
        """(real/fake patch map, attribute logits); with_cond adds the conditional logits (B, n_attributes, 2),
        value 0 then 1 (None without the head)."""
        h = self.main(x)
        src, cls = self.conv1(h), self.conv2(h).flatten(1)
        if not with_cond:
            return src, cls
        cond = None if self.conv3 is None else self.conv3(h).mean((2, 3)).view(x.size(0), -1, 2)
        return src, cls, cond
