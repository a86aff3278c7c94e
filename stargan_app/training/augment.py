"""DiffAugment (Zhao et al. 2020): differentiable augmentations of every image D sees, real and fake alike.

Only geometric ones: colour is what the hair attributes are, so colour jitter would teach D's classifier to ignore it.
Translation pads by reflection, not zeros, so no border of the frame is hidden from D (with zero padding G was free
to paint coloured lines along the sample edges, where D only ever saw padding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

TRANSLATION_RATIO = 0.125  # largest shift, as a fraction of the side (DiffAugment's default)
# side of the cut-out square, as a fraction of the side (DiffAugment's 0.5 would hide whole glasses)
CUTOUT_RATIO = 0.25


def _offsets(n: int, low: int, high: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """n integers in [low, high], shaped (n, 1, 1) to broadcast over rows and columns."""
    return torch.randint(low, high + 1, (n, 1, 1), generator=gen).to(device)


def translate(x: torch.Tensor, gen: torch.Generator, ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    """Shift each image by its own integer offset in [-ratio*side, ratio*side], reflecting at the borders."""
    B, _, H, W = x.shape
    pad = max(1, round(min(H, W) * ratio))
    rows = torch.arange(H, device=x.device).view(1, H, 1) + _offsets(B, -pad, pad, gen, x.device) + pad
    cols = torch.arange(W, device=x.device).view(1, 1, W) + _offsets(B, -pad, pad, gen, x.device) + pad
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect").permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C)
    picked = padded[torch.arange(B, device=x.device).view(B, 1, 1), rows, cols]  # (B, H, W, C)
    return picked.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    """Zero (mid-grey in [-1, 1]) one square of side ratio*side per image, placed wholly inside it."""
    B, _, H, W = x.shape
    h, w = max(1, round(H * ratio)), max(1, round(W * ratio))
    top, left = _offsets(B, 0, H - h, gen, x.device), _offsets(B, 0, W - w, gen, x.device)
    rows = torch.arange(H, device=x.device).view(1, H, 1)
    cols = torch.arange(W, device=x.device).view(1, 1, W)
    hole = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    return x * (~hole).unsqueeze(1).to(x.dtype)


AUGMENTATIONS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "translation": translate,
    "cutout": cutout,
}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """Apply the policy's augmentations in order, each with fresh random parameters per image from `gen`.

    An empty policy returns x itself and draws nothing, so a run without augmentation is unchanged.
    """
    for name in policy:
        x = AUGMENTATIONS[name](x, gen)
    return x
