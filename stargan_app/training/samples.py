"""Sample grids of a StarGAN run: held-out faces, their reconstruction and every single-attribute edit."""

from __future__ import annotations

from pathlib import Path

import torch

from stargan_app.config import LabelSchema
from stargan_app.imaging import make_grid, tensor_to_pil
from stargan_app.labels import full_label_vector, single_attribute_edits
from stargan_app.models import Generator
from stargan_app.runtime import module_device
from stargan_app.training.resume import GANState


@torch.no_grad()
def sample_grid(G: Generator, schema: LabelSchema, faces: torch.Tensor, face_labels: torch.Tensor):
    """Rows: test faces. Columns: input, reconstruction, then every single-attribute edit."""
    dev = module_device(G)
    tiles = []
    for x, lab in zip(faces, face_labels):
        source = dict(zip(schema.attributes, lab.tolist()))
        edits = single_attribute_edits(schema, source)
        recon_c = full_label_vector(schema, 0, lab[schema.group_slice(0)][None])[0]
        cs = torch.stack([recon_c] + [c for _, c in edits]).to(dev)
        outs = G(x[None].to(dev).expand(len(cs), -1, -1, -1), cs)
        tiles += [tensor_to_pil(x)] + [tensor_to_pil(o) for o in outs.float()]
    return make_grid(tiles, ncols=len(cs) + 1)


def save_sample_grid(gan: GANState, run_dir: Path, faces: torch.Tensor, face_labels: torch.Tensor, step: int) -> None:
    """runs/<run>/samples/step_<step>.png from the exported generator (the EMA where the run keeps one), and
    raw_step_<step>.png from the trained G beside it: the average lags, so judge a run's progress by the raw G."""
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    served = gan.G_ema if gan.G_ema is not None else gan.G
    generators = {"step": served, **({"raw_step": gan.G} if gan.G_ema is not None else {})}
    for prefix, G in generators.items():
        grid = sample_grid(G, gan.model_config.labels, faces, face_labels)
        grid.save(run_dir / "samples" / f"{prefix}_{step:08d}.png")
