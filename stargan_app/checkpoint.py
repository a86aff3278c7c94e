"""All weight I/O: safetensors weights with JSON config metadata, resume checkpoints, official .ckpt import."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from stargan_app.config import (
    HAIR_COLOURS,
    CGANConfig,
    LabelSchema,
    StarGANConfig,
    config_from_json,
    config_to_json,
)
from stargan_app.errors import WeightsError
from stargan_app.models import CGANDiscriminator, CGANGenerator, Discriminator, Generator

FORMAT = "stargan-app/1"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_FILES = {
    "stargan": "stargan_celeba.safetensors",
    "mnist": "cgan_mnist.safetensors",
    "fashion": "cgan_fashion.safetensors",
}
HUB_REPO_ENV = "STARGAN_APP_HUB_REPO"  # optional: fetch missing weights from this Hugging Face repo id
HUB_REPO_FILE = "HUB_REPO"  # the same, written into weights/ of a published Space

# kind -> (config class, {module name: class})
KINDS: dict[str, tuple[type, dict[str, type[nn.Module]]]] = {
    "stargan": (StarGANConfig, {"G": Generator, "D": Discriminator}),
    "cgan": (CGANConfig, {"G": CGANGenerator, "D": CGANDiscriminator}),
}


@dataclass
class LoadedWeights:
    kind: str  # "stargan" or "cgan"
    config: Any  # StarGANConfig or CGANConfig
    modules: dict[str, nn.Module]  # "G" and, when the file has it, "D"
    info: dict[str, Any] = field(default_factory=dict)  # provenance: steps, data, hardware, metrics
    path: Path | None = None


def save_weights(
    path: str | Path,
    kind: str,
    config: Any,
    modules: dict[str, nn.Module],
    info: dict[str, Any] | None = None,
    fp16: bool = False,
) -> Path:
    """Write modules' state dicts into one safetensors file; the config travels as JSON metadata."""
    tensors = {}
    for name, module in modules.items():
        for key, t in module.state_dict().items():
            t = t.detach().cpu()
            if fp16 and t.is_floating_point():
                t = t.half()
            tensors[f"{name}.{key}"] = t.contiguous()
    metadata = {
        "format": FORMAT,
        "kind": kind,
        "config": config_to_json(config),
        "modules": ",".join(modules),
        "info": json.dumps(info or {}, sort_keys=True),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # safetensors raises several types for a file that is not safetensors
        raise WeightsError(f"{path.name} is not a readable safetensors weights file ({e}).") from None


def load_weights(path: str | Path, kind: str | None = None, device: str | torch.device = "cpu") -> LoadedWeights:
    """Rebuild the models a weights file describes, from its metadata alone, and load them strictly."""
    path = _existing(path)
    meta = read_metadata(path)
    if meta.get("format") != FORMAT or meta.get("kind") not in KINDS:
        raise WeightsError(f"{path.name} is a safetensors file but not stargan-app weights (no model metadata).")
    if kind is not None and meta["kind"] != kind:
        raise WeightsError(f"{path.name} holds a {meta['kind']} model, but a {kind} model is needed here.")
    config_cls, builders = KINDS[meta["kind"]]
    try:
        config = config_from_json(config_cls, meta["config"])
        info = json.loads(meta.get("info") or "{}")
    except (ValueError, TypeError) as e:
        raise WeightsError(f"{path.name} has an unreadable model config: {e}") from None
    with safe_open(str(path), framework="pt", device="cpu") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    modules = {}
    for name in meta.get("modules", "G").split(","):
        module = builders[name](config)
        state = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise WeightsError(f"{path.name}: the {name} weights do not match the config in its metadata: {e}") from None
        modules[name] = module.to(device).eval()
    return LoadedWeights(meta["kind"], config, modules, info, path)


def resolve_weights(name_or_path: str | Path | None, default: str) -> Path:
    """A path, or a short name ("stargan", "mnist", "fashion") -> the shipped file, fetched from the Hub if opted in."""
    if name_or_path is not None and str(name_or_path) not in DEFAULT_FILES:
        return Path(name_or_path)
    filename = DEFAULT_FILES[str(name_or_path or default)]
    local = WEIGHTS_DIR / filename
    repo = hub_repo()
    if local.exists() or not repo:
        return local
    return _hub_download(repo, filename)


def hub_repo() -> str:
    """The Hugging Face model repo to fetch missing weights from: $STARGAN_APP_HUB_REPO, else the one named in
    weights/HUB_REPO (written by `app.py publish` into a Space whose weights live in a model repo), else ''."""
    marker = WEIGHTS_DIR / HUB_REPO_FILE
    return os.environ.get(HUB_REPO_ENV) or (marker.read_text().strip() if marker.is_file() else "")


def _hub_download(repo_id: str, filename: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as e:  # offline, no such repo, no such file: all the same to the user
        raise WeightsError(f"Could not fetch {filename} from the Hugging Face repo {repo_id!r}: {e}") from None


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"Weights file not found: {path}. Train one with `python app.py train ...` or pass the path of a weights file."
        )
    return path


# ---------------------------------------------------------------- resume checkpoints (training)

_RESUME_RE = re.compile(r"step_(\d+)\.pt$")


def save_resume(run_dir: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Atomically write a full training state (temp file + rename) and prune older ones."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / f"step_{step:08d}.pt"
    fd, tmp = tempfile.mkstemp(dir=ckpt_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    for old in resume_checkpoints(run_dir)[keep:]:
        old.unlink(missing_ok=True)
    return final


def resume_checkpoints(run_dir: str | Path) -> list[Path]:
    """Resume checkpoints in a run dir, newest first."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    found = [p for p in ckpt_dir.glob("step_*.pt") if _RESUME_RE.search(p.name)] if ckpt_dir.is_dir() else []
    return sorted(found, key=lambda p: int(_RESUME_RE.search(p.name).group(1)), reverse=True)


def load_resume(run_dir: str | Path) -> dict[str, Any] | None:
    """The newest resume checkpoint that loads completely; damaged ones are skipped with a warning."""
    for path in resume_checkpoints(run_dir):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or corrupt: fall back to the previous one
            print(f"warning: skipping damaged checkpoint {path.name}: {e.__class__.__name__}: {e}")
    return None


# ---------------------------------------------------------------- official StarGAN checkpoints


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
        raise WeightsError(f"{Path(g_ckpt).name} does not have the official StarGAN key layout (missing {e}).") from None
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
            raise WeightsError(f"The official {name} checkpoint does not match the inferred architecture: {e}") from None
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
