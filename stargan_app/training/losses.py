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


def value_logits(cond: torch.Tensor, values: torch.Tensor, group: slice) -> torch.Tensor:
    """(B, k): from conditional logits (B, n_attributes, 2), each sample's logit for the value `values` (B, k) gives
    each attribute of its label group (the columns `group`)."""
    return cond[:, group].gather(2, (values >= 0.5).long().unsqueeze(2)).squeeze(2)


def conditional_loss(logits: torch.Tensor, real: bool, weight: torch.Tensor | None = None) -> torch.Tensor:
    """BCE of conditional logits towards real (1) or fake (0), each term times `weight` (same shape; None = 1), summed
    over attributes and averaged over the batch (as classification_loss)."""
    target = torch.full_like(logits, 1.0 if real else 0.0, dtype=torch.float32)
    return F.binary_cross_entropy_with_logits(logits.float(), target, weight=weight, reduction="sum") / logits.size(0)


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


def r1_penalty(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): half the batch mean of ||d out / d x||^2 on real images (x must require grad)."""
    (grad,) = torch.autograd.grad(out.float().sum(), x, create_graph=True)
    return 0.5 * grad.float().pow(2).flatten(1).sum(1).mean()
