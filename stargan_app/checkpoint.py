"""Serving weights I/O: safetensors files whose JSON metadata carries the model config; models are rebuilt from it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from stargan_app.config import CGANConfig, GuideConfig, StarGANConfig, config_from_json, config_to_json
from stargan_app.errors import WeightsError
from stargan_app.models import AttributeGuide, CGANDiscriminator, CGANGenerator, Discriminator, Generator

FORMAT = "stargan-app/1"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_FILES = {
    "stargan": "stargan_celeba.safetensors",
    "mnist": "cgan_mnist.safetensors",
    "fashion": "cgan_fashion.safetensors",
}
REGIONS_SUFFIX = (
    ".regions.safetensors"  # a stargan file's attribute region maps live beside it: NAME.regions.safetensors
)
HAIR_COLOURS_FILE = "hair_colours.safetensors"  # the hair-colour model, beside the face weights (any of them)
KEEP_LIST_SUFFIX = ".keep.json"  # which attributes a stargan file edits well enough to keep: NAME.keep.json beside it
HUB_REPO_ENV = "STARGAN_APP_HUB_REPO"  # optional: fetch missing weights from this Hugging Face repo id
HUB_REPO_FILE = "HUB_REPO"  # the same, written into weights/ of a published Space

# kind -> (config class, {module name: class})
KINDS: dict[str, tuple[type, dict[str, type[nn.Module]]]] = {
    "stargan": (StarGANConfig, {"G": Generator, "D": Discriminator}),
    "cgan": (CGANConfig, {"G": CGANGenerator, "D": CGANDiscriminator}),
    "guide": (GuideConfig, {"guide": AttributeGuide}),
}
GUIDE_FILE = "stargan_guide.safetensors"  # the robust attribute classifier that guides G's training


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
    unserved: dict[str, nn.Module] | None = None,
) -> Path:
    """Write modules' state dicts into one safetensors file; the config travels as JSON metadata.

    `unserved` modules (a training state's raw G) are stored under their names but not listed as modules, so
    load_weights never builds them; training reads them back with read_tensors.
    """
    tensors = {}
    for name, module in {**modules, **(unserved or {})}.items():
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


def read_tensors(path: str | Path, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors of a weights file whose names start with `prefix` + ".", with the prefix removed."""
    path = _existing(path)
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return {k[len(prefix) + 1 :]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix + ".")}


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
    modules = {}
    for name in meta.get("modules", "G").split(","):
        module = builders[name](config)
        state = read_tensors(path, name)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise WeightsError(
                f"{path.name}: the {name} weights do not match the config in its metadata: {e}"
            ) from None
        modules[name] = module.to(device).eval()
    return LoadedWeights(meta["kind"], config, modules, info, path)


def resolve_weights(name_or_path: str | Path | None, default: str) -> Path:
    """A path, or a short name ("stargan", "mnist", "fashion") -> the shipped file, fetched from the Hub if opted in."""
    if name_or_path is not None and str(name_or_path) not in DEFAULT_FILES:
        return Path(name_or_path)
    filename = DEFAULT_FILES[str(name_or_path or default)]
    local = WEIGHTS_DIR / filename
    if local.exists():
        return local
    repo = hub_repo()
    if not repo:
        raise WeightsError(
            f"{filename} is not in {WEIGHTS_DIR}: set {HUB_REPO_ENV}=USER/REPO to download it from a Hugging Face "
            "model repo, or pass the path of a weights file."
        )
    path = _hub_download(repo, filename)
    for companion in companion_files(filename):  # into the same snapshot folder, where the editor looks; optional
        try:
            _hub_download(repo, companion)
        except WeightsError:
            pass
    return path


def companion_name(filename: str) -> str:
    """The name of the region maps that belong beside a weights file."""
    return filename.removesuffix(".safetensors") + REGIONS_SUFFIX


def keep_list_name(filename: str) -> str:
    """The name of the keep list (the attributes judged worth keeping on the portrait sheet) beside a weights file."""
    return filename.removesuffix(".safetensors") + KEEP_LIST_SUFFIX


def companion_files(filename: str) -> list[str]:
    """The files that belong beside a shipped weights file: its region maps and, beside the face weights, the
    hair-colour model and the keep list."""
    face = [HAIR_COLOURS_FILE, keep_list_name(filename)] if filename == DEFAULT_FILES["stargan"] else []
    return [companion_name(filename), *face]


Companion = TypeVar("Companion")


def find_beside_weights(
    weights: str | Path,
    choice: str | Path | bool | Companion | None,
    filename: str,
    load: Callable[[Path], Companion],
    kind: type[Companion],
) -> Companion | None:
    """A companion of a weights file (region maps, hair-colour model, keep list) as an option chooses it: False none;
    an already loaded `kind` itself; None or True the file `filename` beside the weights, loaded, or None when there
    is no such file; any other value a path, loaded (a missing or bad file raises the loader's WeightsError)."""
    if choice is False:
        return None
    if isinstance(choice, kind):
        return choice
    if choice is None or choice is True:
        path = Path(weights).with_name(filename)
        return load(path) if path.is_file() else None
    return load(Path(choice))


def hub_repo() -> str:
    """The Hugging Face model repo to fetch missing weights from, as USER/REPO or USER/REPO@REVISION:
    $STARGAN_APP_HUB_REPO, else the one named in weights/HUB_REPO (written by `publish` into a Space whose weights
    live in a model repo, pinned to the commit it uploaded), else ''."""
    marker = WEIGHTS_DIR / HUB_REPO_FILE
    return os.environ.get(HUB_REPO_ENV) or (marker.read_text().strip() if marker.is_file() else "")


def _hub_download(repo: str, filename: str) -> Path:
    repo_id, _, revision = repo.partition("@")
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision or None))
    except Exception as e:  # offline, no such repo, no such file: all the same to the user
        raise WeightsError(f"Could not fetch {filename} from the Hugging Face repo {repo!r}: {e}") from None


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"Weights file not found: {path}. "
            "Train one with `python app.py train ...` or pass the path of a weights file."
        )
    return path


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_frozen_guide(
    path: str, attributes: tuple[str, ...], device: torch.device, role: str = "--guide"
) -> tuple[nn.Module, dict]:
    """The attribute guide of a weights file (`train guide`), frozen and in eval mode, and its provenance (file name,
    sha256, how it was trained) for the run's info; it must read `attributes`, in order (`role` names the file's use
    in the message)."""
    loaded = load_weights(path, kind="guide", device=device)
    if loaded.config.attributes != attributes:
        raise WeightsError(f"{role} {path} reads {loaded.config.attributes}, not this run's attributes {attributes}.")
    guide = loaded.modules["guide"].float().eval().requires_grad_(False)
    provenance = {
        "file": Path(path).name,
        "sha256": file_sha256(path),
        "adversarial_training": loaded.info.get("adversarial_training", "unknown"),
        "seed": loaded.info.get("seed"),
    }
    return guide, provenance
