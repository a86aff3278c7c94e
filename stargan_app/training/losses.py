"""GAN losses: WGAN-GP critic terms, gradient penalty, attribute classification, reconstruction, BCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gradient_penalty(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: mean of (||d out / d x||_2 - 1)^2 over the batch (x must require grad)."""
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    norm = grad.float().flatten(1).norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


def classification_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-label BCE summed over attributes, averaged over the batch (as in the official CelebA setup)."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="sum") / logits.size(0)


def reconstruction_loss(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    return (x.float() - x_rec.float()).abs().mean()


def critic_real_loss(out_src: torch.Tensor) -> torch.Tensor:
    return -out_src.float().mean()


def critic_fake_loss(out_src: torch.Tensor) -> torch.Tensor:
    return out_src.float().mean()


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
