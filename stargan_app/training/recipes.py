"""One object per StarGAN objective: D's and G's losses for a batch (as StyleGAN2-ADA's `Loss`).

- "wgan-gp": the paper's. WGAN critic with gradient penalty, n_critic 5, D classifies real faces, G pays for what D's
  classifier reads on its fakes.
- "v2": StarGAN v2's adversarial loss. Non-saturating, lazy R1 on real faces, one D step per G step; the classifier
  terms as in the paper.
- "conditional": "v2" with a conditional real/fake head in place of the classifier's pull on G. Per attribute of the
  batch's label group, D learns "a real face with this value" from real faces at their own values (positives), the
  same faces at the other value and G's fakes at their targets (negatives; GAN-CLS's matching-aware loss). G is paid
  only for looking like a real face with the target labels. A small CNN's classification head is moved most cheaply by
  saturated, high-frequency patches; a head that has seen fakes rejects them. The classifier stays in D's loss, on
  real faces only: the app reads a face's current attributes from it.

Any recipe can take a guide (`--guide`): a frozen, adversarially trained attribute classifier whose BCE on G's fakes at
their targets is G's attribute term, in place of D's classification term. Only real features move a robust
classifier, so G cannot earn that term with textures.

The loop calls recipe.d_loss / recipe.g_loss and asks recipe.trains_g(step); it never asks which recipe it runs.
"""

from __future__ import annotations

import torch
from torch import nn

from stargan_app.labels import present
from stargan_app.training import augment, losses
from stargan_app.training.batches import Batch
from stargan_app.training.devices import Autocast
from stargan_app.training.options import PAPER_N_CRITIC, StarGANTrainConfig, parse_policy

Logs = dict[str, torch.Tensor]
Heads = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]  # D's (real/fake map, class logits, conditional)


def guide_loss(guide: nn.Module, x_fake: torch.Tensor, batch: Batch, keep: float = 0.0) -> torch.Tensor:
    """The guide's classification loss on G's fakes towards the batch's target labels, in its label group's columns
    (the guide's attributes are the schema's, in order); with keep > 0, plus keep times its loss on the other columns
    towards what it reads on the input faces (an edit of one group leaves the other's attributes as they were)."""
    logits = guide(x_fake)
    loss = losses.classification_loss(logits[:, batch.cls_slice], batch.label_trg)
    if keep > 0:
        others = torch.ones(logits.size(1), dtype=torch.bool, device=logits.device)
        others[batch.cls_slice] = False
        with torch.no_grad():
            source = torch.sigmoid(guide(batch.x).float())
        loss = loss + keep * losses.classification_loss(logits[:, others], source[:, others])
    return loss


def split_heads(heads: Heads, n: int) -> tuple[Heads, Heads]:
    """D's outputs for a batch of [first n | rest] as the outputs for each part."""
    src, cls, cond = heads
    first = (src[:n], cls[:n], None if cond is None else cond[:n])
    rest = (src[n:], cls[n:], None if cond is None else cond[n:])
    return first, rest


class Recipe:
    """The shared G loss (adversarial term from the subclass, cycle reconstruction, identity) and D's schedule;
    subclasses give d_loss and g_adversarial."""

    default_n_critic = 1  # D steps per G step when the run does not set n_critic
    d_has_cond_head = False  # whether D carries the conditional real/fake head (StarGANConfig.cond_head)

    def __init__(self, cfg: StarGANTrainConfig, guide: nn.Module | None = None):
        self.cfg = cfg
        self.n_critic = cfg.n_critic or self.default_n_critic
        self.guide = guide  # frozen: its parameters never require grad, it stays in eval mode
        self.policy = parse_policy(cfg.augment)  # DiffAugment's, parsed once per run

    def seen_by_d(self, images: torch.Tensor, batch: Batch) -> torch.Tensor:
        """What D is shown of `images`: the run's DiffAugment policy applied (differentiably) with the batch's draws,
        or the images."""
        return augment.diff_augment(images, self.policy, batch.aug_gen)

    @property
    def g_cls_weight(self) -> float:
        """Weight of D's classification term in G's loss: none where a guide replaces it."""
        return 0.0 if self.guide is not None else self.cfg.lambda_cls

    def loss_weights(self) -> dict[str, float]:
        """The weights this recipe's losses use, as each training stage records them."""
        cfg = self.cfg
        weights = {"cls": cfg.lambda_cls, "rec": cfg.lambda_rec, "id": cfg.lambda_id, **self.penalty_weights()}
        if self.guide is not None:
            weights.update(guide=cfg.lambda_guide, guide_keep=cfg.guide_keep, g_cls=self.g_cls_weight)
        return weights

    def penalty_weights(self) -> dict[str, float]:
        return {"r1": self.cfg.lambda_r1, "r1_every": self.cfg.r1_every}

    def trains_g(self, step: int) -> bool:
        """G (and its moving average) step on every n_critic-th step, once D's warm-up is over."""
        return step >= self.cfg.d_warmup and (step + 1) % self.n_critic == 0

    def d_loss(
        self,
        D: nn.Module,
        G: nn.Module,
        batch: Batch,
        step: int,
        autocast: Autocast,
        x_fake: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def g_adversarial(self, fake: Heads, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """G's adversarial (and, in the paper's recipes, classification) term for D's outputs on its fakes."""
        raise NotImplementedError

    def g_loss(
        self,
        G: nn.Module,
        D: nn.Module,
        batch: Batch,
        step: int,
        autocast: Autocast,
        x_fake: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Logs]:
        """Fool D, reconstruct the input through the cycle (and at the source labels). `x_fake`: G(x, c_trg) with its
        graph when the step has it already (train_step's D pass), else computed here."""
        cfg = self.cfg
        with autocast:
            if x_fake is None:
                x_fake = G(batch.x, batch.c_trg)
            fake = D(self.seen_by_d(x_fake, batch), with_cond=True)
            x_rec = G(x_fake, batch.c_org)
            g_guide = None if self.guide is None else guide_loss(self.guide, x_fake, batch, cfg.guide_keep)
        g_adv, logs = self.g_adversarial(fake, batch)
        g_rec = losses.reconstruction_loss(batch.x, x_rec)
        g_loss = g_adv + cfg.lambda_rec * g_rec
        logs["G/rec"] = g_rec
        if g_guide is not None:
            g_loss = g_loss + cfg.lambda_guide * g_guide
            logs["G/guide"] = g_guide
        if cfg.lambda_id > 0:  # the cycle alone leaves G(x, c_org) free to drift (colour casts) as long as it inverts
            with autocast:
                x_id = G(batch.x, batch.c_org)
            g_id = losses.reconstruction_loss(batch.x, x_id)
            g_loss = g_loss + cfg.lambda_id * g_id
            logs["G/id"] = g_id
        return g_loss, logs

    def fakes(self, G: nn.Module, batch: Batch, x_fake: torch.Tensor | None = None) -> torch.Tensor:
        """G's edits of the batch at its targets, as D trains on them (no gradient to G): `x_fake` detached when the
        step computed it already, else a pass of G without a graph."""
        if x_fake is None:
            with torch.no_grad():
                x_fake = G(batch.x, batch.c_trg)
        return x_fake.detach().to(batch.x.dtype)


class WganGp(Recipe):
    """The paper's: WGAN-GP critic, n_critic 5, classification on real faces for D and on fakes for G."""

    default_n_critic = PAPER_N_CRITIC

    def penalty_weights(self) -> dict[str, float]:
        return {"gp": self.cfg.lambda_gp}

    def d_loss(
        self,
        D: nn.Module,
        G: nn.Module,
        batch: Batch,
        step: int,
        autocast: Autocast,
        x_fake: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Logs]:
        cfg, x, B = self.cfg, batch.x, batch.x.size(0)
        with autocast:
            x_fake = self.fakes(G, batch, x_fake)
            src, cls = D(self.seen_by_d(torch.cat([x, x_fake]), batch))  # one forward: D has no normalisation
            (src_real, src_fake), cls_real = src.split(B), cls[:B]
            # the interpolates get their own forward so the double backward covers only them
            x_hat = (batch.alpha * x + (1 - batch.alpha) * x_fake.float()).requires_grad_(True)
            src_hat, _ = D(self.seen_by_d(x_hat, batch))
        d_cls = losses.classification_loss(cls_real[:, batch.cls_slice], batch.label_org)
        d_real, d_fake = losses.critic_real_loss(src_real), losses.critic_fake_loss(src_fake)
        d_gp = losses.gradient_penalty(src_hat, x_hat)
        d_loss = d_real + d_fake + cfg.lambda_cls * d_cls + cfg.lambda_gp * d_gp
        return d_loss, {"D/real": d_real, "D/fake": d_fake, "D/cls": d_cls, "D/gp": d_gp}

    def g_adversarial(self, fake: Heads, batch: Batch) -> tuple[torch.Tensor, Logs]:
        g_fake = losses.critic_real_loss(fake[0])
        g_cls = losses.classification_loss(fake[1][:, batch.cls_slice], batch.label_trg)
        return g_fake + self.g_cls_weight * g_cls, {"G/fake": g_fake, "G/cls": g_cls}


class NonSaturatingR1(Recipe):
    """StarGAN v2's adversarial loss: non-saturating, lazy R1 on real faces; the paper's classification terms."""

    def d_loss(
        self,
        D: nn.Module,
        G: nn.Module,
        batch: Batch,
        step: int,
        autocast: Autocast,
        x_fake: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Logs]:
        cfg, x, B = self.cfg, batch.x, batch.x.size(0)
        lazy_r1 = cfg.lambda_r1 > 0 and step % cfg.r1_every == 0
        with autocast:
            x_fake = self.fakes(G, batch, x_fake)
            if lazy_r1:  # R1 needs the real forward on its own, with x requiring grad
                x_real = x.detach().requires_grad_(True)
                real = D(self.seen_by_d(x_real, batch), with_cond=True)
                fake = D(self.seen_by_d(x_fake, batch), with_cond=True)
            else:  # real and fake in one forward (D has no normalisation)
                real, fake = split_heads(D(self.seen_by_d(torch.cat([x, x_fake]), batch), with_cond=True), B)
        d_cls = losses.classification_loss(real[1][:, batch.cls_slice], batch.label_org)
        d_real, d_fake = losses.bce_real(real[0].float()), losses.bce_fake(fake[0].float())
        d_loss = d_real + d_fake + cfg.lambda_cls * d_cls
        logs = {"D/real": d_real, "D/fake": d_fake, "D/cls": d_cls}
        d_cond, r1_outputs = self.d_conditional(real, fake, batch, logs)
        if d_cond is not None:
            d_loss = d_loss + cfg.lambda_cond * d_cond
        if lazy_r1:
            d_r1 = losses.r1_penalty(r1_outputs, x_real)
            d_loss = d_loss + cfg.lambda_r1 * cfg.r1_every * d_r1
            logs["D/r1"] = d_r1
        return d_loss, logs

    def d_conditional(
        self, real: Heads, fake: Heads, batch: Batch, logs: Logs
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(the conditional head's loss or None, the real outputs R1 penalises); adds what it measures to logs."""
        return None, real[0]

    def g_adversarial(self, fake: Heads, batch: Batch) -> tuple[torch.Tensor, Logs]:
        g_fake = losses.bce_real(fake[0].float())
        g_cls = losses.classification_loss(fake[1][:, batch.cls_slice], batch.label_trg)
        return g_fake + self.g_cls_weight * g_cls, {"G/fake": g_fake, "G/cls": g_cls}


class Conditional(NonSaturatingR1):
    """NonSaturatingR1 with the conditional real/fake head; no classification term for G (see the module doc)."""

    d_has_cond_head = True

    def penalty_weights(self) -> dict[str, float]:
        return {"cond": self.cfg.lambda_cond, **super().penalty_weights()}

    def d_conditional(
        self, real: Heads, fake: Heads, batch: Batch, logs: Logs
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        right = losses.value_logits(real[2], batch.label_org, batch.cls_slice)
        wrong = losses.value_logits(real[2], 1.0 - batch.label_org, batch.cls_slice)
        fake_at_target = losses.value_logits(fake[2], batch.label_trg, batch.cls_slice)
        d_cond = losses.conditional_loss(right, True) + 0.5 * (
            losses.conditional_loss(wrong, False)
            + losses.conditional_loss(fake_at_target, False, self.changed_weights(batch))
        )
        logs["D/cond"] = d_cond
        # the head's mean logits: if real/right and real/wrong do not separate, G learns nothing from it
        for name, logits in (("real_right", right), ("real_wrong", wrong), ("fake_target", fake_at_target)):
            logs[f"D/cond_{name}"] = logits.detach().float().mean()
        return d_cond, torch.cat([real[0].flatten(1), right], 1)

    def changed_weights(self, batch: Batch) -> torch.Tensor | None:
        """(B, k) weights of the fake terms: cond_changed_weight where the target changes an attribute, 1 where it
        keeps it; None when they are all 1."""
        if self.cfg.cond_changed_weight == 1.0:
            return None
        changed = (present(batch.label_trg) != present(batch.label_org)).float()
        return 1.0 + (self.cfg.cond_changed_weight - 1.0) * changed

    def g_adversarial(self, fake: Heads, batch: Batch) -> tuple[torch.Tensor, Logs]:
        g_fake = losses.bce_real(fake[0].float())
        fake_at_target = losses.value_logits(fake[2], batch.label_trg, batch.cls_slice)
        g_cond = losses.conditional_loss(fake_at_target, True, self.changed_weights(batch))
        return g_fake + self.cfg.lambda_cond * g_cond, {"G/fake": g_fake, "G/cond": g_cond}


RECIPES: dict[str, type[Recipe]] = {"wgan-gp": WganGp, "v2": NonSaturatingR1, "conditional": Conditional}


def recipe_for(cfg: StarGANTrainConfig, guide: nn.Module | None = None) -> Recipe:
    """The run's objective (with the frozen guide, when the run has one); the config has checked its name."""
    return RECIPES[cfg.recipe](cfg, guide)
