"""Import of official yunjey/stargan `*-G.ckpt` / `*-D.ckpt` files into stargan-app weights, bit-exact."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from stargan_app.checkpoint import save_weights
from stargan_app.config import HAIR_COLOURS, LabelSchema, StarGANConfig
from stargan_app.errors import WeightsError
from stargan_app.models import Discriminator, Generator


def parse_official_attrs(attrs: str) -> LabelSchema:
    """'A,B,C' -> one group; 'A,B;C,D' -> two groups with a mask vector (multi-dataset StarGAN)."""
    groups = tuple(tuple(a.strip() for a in g.split(",") if a.strip()) for g in attrs.split(";") if g.strip())
    return LabelSchema(groups=groups, exclusive=HAIR_COLOURS)


def import_official(
    g_ckpt: str | Path, d_ckpt: str | Path | None, attrs: str, image_size: int, out: str | Path
) -> Path:
    """Convert yunjey/stargan `*-G.ckpt` (and optionally `*-D.ckpt`) into a stargan-app weights file, bit-exact."""
    labels = parse_official_attrs(attrs)
    g_state = _load_official(g_ckpt)
    d_state = _load_official(d_ckpt) if d_ckpt else None
    try:
        first = g_state["main.0.weight"]
        g_repeat = len({k.split(".")[1] for k in g_state if re.match(r"main\.\d+\.main\.", k)})
        d_kwargs = {}
        if d_state is not None:
            d_convs = [k for k in d_state if re.fullmatch(r"main\.\d+\.weight", k)]
            d_kwargs = {"d_conv_dim": d_state["main.0.weight"].shape[0], "d_repeat_num": len(d_convs)}
            kernel = d_state["conv2.weight"].shape[-1]
            if kernel * 2 ** len(d_convs) != image_size:
                raise WeightsError(
                    f"The discriminator was trained at {kernel * 2 ** len(d_convs)} px, not --image-size {image_size}."
                )
    except KeyError as e:
        raise WeightsError(
            f"{Path(g_ckpt).name} does not have the official StarGAN key layout (missing {e})."
        ) from None
    if first.shape[1] - 3 != labels.c_dim:
        raise WeightsError(
            f"The generator expects {first.shape[1] - 3} label values, but --attrs gives {labels.c_dim} "
            f"({labels.cls_dim} attributes + {labels.mask_dim} mask)."
        )
    cfg = StarGANConfig(
        image_size=image_size,
        conv_dim=first.shape[0],
        g_repeat_num=g_repeat,
        labels=labels,
        track_running_stats="main.1.running_mean" in g_state,
        **d_kwargs,
    )
    modules: dict[str, nn.Module] = {"G": Generator(cfg)}
    states = {"G": g_state}
    if d_state is not None:
        modules["D"] = Discriminator(cfg)
        states["D"] = d_state
    for name, module in modules.items():
        try:
            module.load_state_dict(states[name], strict=True)
        except RuntimeError as e:
            raise WeightsError(
                f"The official {name} checkpoint does not match the inferred architecture: {e}"
            ) from None
    info = {"source": "official yunjey/stargan checkpoint", "files": [Path(p).name for p in (g_ckpt, d_ckpt) if p]}
    return save_weights(out, "stargan", cfg, modules, info=info, fp16=False)


def _load_official(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path.name} could not be loaded as a plain state dict (weights_only=True): {e}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path.name} is not a state dict of tensors.")
    return state
