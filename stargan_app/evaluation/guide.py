"""`app.py eval guide`: what the robust attribute guide wants, drawn by its own gradients, and how well it reads faces.

The ascent grid starts from held-out faces and climbs one attribute's logit at a time with normalised L2 gradient
steps. A robust classifier's gradients draw the feature (a fringe, frames, a brim); a plain one's draw speckle. The
grid is the check that the guide can only be moved by real features before G trains against it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from stargan_app.checkpoint import load_frozen_guide, load_weights
from stargan_app.data.celeba import read_split
from stargan_app.imaging import to_model_range
from stargan_app.labels import display_name, present, recall_specificity
from stargan_app.models import AttributeGuide
from stargan_app.training.adversarial import l2_ascent_step

EVAL_BATCH = 250
ASCENT_STEPS = 40
ASCENT_RADIUS = 12.0  # total L2 budget per face, model range: well past the training radius, to let features show


def ascend(
    model: torch.nn.Module,
    x: torch.Tensor,
    attribute: int,
    radius: float = ASCENT_RADIUS,
    steps: int = ASCENT_STEPS,
) -> torch.Tensor:
    """x moved within an L2 ball of `radius` (and [-1, 1]) up the model's logit of `attribute`, by normalised-gradient
    steps of 2.5 * radius / steps (the PGD step rule, towards the attribute instead of away from the label)."""
    model.eval()
    x = x.detach()
    delta = torch.zeros_like(x)
    step_size = 2.5 * radius / steps
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x + delta)[:, attribute].sum(), delta)
        delta = l2_ascent_step(x, delta, grad, step_size, radius)
    return (x + delta).detach()


def ascent_grid(
    model: torch.nn.Module,
    faces: torch.Tensor,
    attributes: tuple[str, ...],
    out: str | Path,
    radius: float = ASCENT_RADIUS,
    scale: int = 2,
) -> Path:
    """A labelled PNG: one row per face (in [-1, 1]), the face then its ascent towards each attribute."""
    from stargan_app.imaging import make_grid, tensors_to_pils

    columns = [faces] + [ascend(model, faces, j, radius) for j in range(len(attributes))]
    tiles = torch.stack(columns, 1).flatten(0, 1)  # row-major: face by face
    grid = make_grid(tensors_to_pils(tiles), ncols=len(columns))
    grid = grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)
    head = 16
    canvas = Image.new("RGB", (grid.width, grid.height + head), "white")
    canvas.paste(grid, (0, head))
    draw = ImageDraw.Draw(canvas)
    tile = grid.width / len(columns)
    for k, title in enumerate(["input"] + [display_name(a) for a in attributes]):
        draw.text((k * tile + 3, 2), title, fill="black")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out


@torch.inference_mode()
def guide_logits(model: AttributeGuide, crops: torch.Tensor) -> torch.Tensor:
    """The guide's logits for a float batch of crops in [-1, 1], in batches, in eval mode."""
    model.eval()
    return torch.cat([model(crops[i : i + EVAL_BATCH]).float() for i in range(0, len(crops), EVAL_BATCH)])


def held_out_figures(
    model: AttributeGuide, attributes: tuple[str, ...], crops: torch.Tensor, truth: torch.Tensor
) -> dict[str, dict[str, float]]:
    """Recall and specificity per attribute at the 0.5 probability threshold, on held-out faces."""
    recall, specificity = recall_specificity(present(torch.sigmoid(guide_logits(model, crops))), truth)
    return {"recall": dict(zip(attributes, recall)), "specificity": dict(zip(attributes, specificity))}


def print_figures(figures: dict[str, dict[str, float]]) -> None:
    print("held-out recall / specificity")
    for name, recall in figures["recall"].items():
        spec = figures["specificity"][name]
        print(f"  {name:18s} {recall:.3f} / {spec:.3f}" if not math.isnan(recall) else f"  {name:18s} (none)")


def eval_guide(
    weights: str, data_dir: str, out: str | None, test_size: int = 1000, faces: int = 8, radius: float = ASCENT_RADIUS
) -> dict[str, Any]:
    """Held-out recall and specificity of a guide file, and (with out) its ascent grid on the first held-out faces."""
    loaded = load_weights(weights, kind="guide")
    model, cfg = loaded.modules["guide"].float(), loaded.config
    held = read_split(data_dir, test_size).held_out(cfg.attributes, cfg.image_size)
    crops = to_model_range(held.crops)
    figures = held_out_figures(model, cfg.attributes, crops, held.truth)
    print_figures(figures)
    result: dict[str, Any] = {"weights": str(weights), "info": loaded.info, **figures}
    if out:
        result["grid"] = str(ascent_grid(model, crops[:faces], cfg.attributes, out, radius))
        print(f"wrote {result['grid']}")
    return result


def robust_reader(path: str, attributes: tuple[str, ...]) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """(crops (uint8 or [-1, 1]) -> (N, n) bool at probability 0.5, the file's sha256) for a guide-kind file used as a
    reader of edits; its attributes must be the model's, in order."""
    from stargan_app.evaluation.classifier import to_float_images

    model, provenance = load_frozen_guide(path, attributes, torch.device("cpu"), role="--robust-reader")

    def read(crops: torch.Tensor) -> torch.Tensor:
        return present(torch.sigmoid(guide_logits(model, to_float_images(crops))))

    return read, provenance["sha256"]
