"""PGD-L2 (Madry et al. 2018): the worst-case perturbation inside an L2 ball, and the robust classifier's loss on it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def project_l2(delta: torch.Tensor, radius: torch.Tensor | float) -> torch.Tensor:
    """Each sample's perturbation scaled back onto the L2 ball of `radius` (a float or (B,) per sample) if outside."""
    norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    radius = torch.as_tensor(radius, dtype=delta.dtype, device=delta.device).expand_as(norm)
    return delta * (radius / norm).clamp(max=1.0).view(-1, *([1] * (delta.dim() - 1)))


def keep_in_range(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """delta clipped so x + delta stays in the model range [-1, 1]; this only shrinks it, so it stays in its ball."""
    return (x + delta).clamp(-1.0, 1.0) - x


def l2_ascent_step(
    x: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor, step_size: float, radius: float
) -> torch.Tensor:
    """delta moved step_size along each sample's normalised gradient, back onto the L2 ball and into the range."""
    grad = grad.float()
    step = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (grad.dim() - 1)))
    return keep_in_range(x, project_l2(delta.detach() + step_size * step, radius))


def attribute_bce(logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-label BCE averaged over faces and attributes; pos_weight (n,) balances rare attributes."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=pos_weight)


def pgd_l2(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    radius: float,
    steps: int,
    gen: torch.Generator,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """x + the perturbation of L2 norm <= radius that (approximately) maximises attribute_bce, kept in [-1, 1].

    A random start inside the ball, then `steps` normalised-gradient ascent steps of 2.5 * radius / steps, each
    projected back onto the ball and into the range. The model's parameters get no gradient from the attack.
    """
    x = x.detach()
    if radius <= 0 or steps <= 0:
        return x
    direction = torch.randn(x.shape, generator=gen).to(x.device)
    scale = torch.rand(x.size(0), generator=gen).to(x.device) * radius
    delta = keep_in_range(x, project_l2(direction, 1.0) * scale.view(-1, 1, 1, 1))
    step_size = 2.5 * radius / steps
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = attribute_bce(model(x + delta), labels, pos_weight)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = l2_ascent_step(x, delta, grad, step_size, radius)
    finally:
        for p in params:
            p.requires_grad_(True)
    return (x + delta).detach()
