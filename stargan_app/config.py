"""Frozen model configs: what every weights file carries, and what the app rebuilds each model from."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
GROUP_A = ("Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
GROUP_B = ("Wearing_Earrings", "Wearing_Hat", "Mustache", "Eyeglasses")
DIGIT_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


OUTPUT_MODES = ("image", "masked", "residual")
UPSAMPLE_MODES = ("deconv", "deconv_blur", "resize")


@dataclass(frozen=True)
class LabelSchema:
    groups: tuple[tuple[str, ...], ...] = (GROUP_A, GROUP_B)  # attributes of each label group ("dataset")
    exclusive: tuple[str, ...] = HAIR_COLOURS  # attributes of which at most one is on (hair colours)

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(tuple(g) for g in self.groups))
        object.__setattr__(self, "exclusive", tuple(a for a in self.exclusive if a in self.attributes))
        if not self.groups or any(not g for g in self.groups):
            raise ValueError("a label schema needs at least one non-empty group")
        if len(set(self.attributes)) != len(self.attributes):
            raise ValueError(f"attribute names repeat across groups: {self.attributes}")

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(a for g in self.groups for a in g)

    @property
    def mask_dim(self) -> int:
        """Length of the dataset mask vector: one slot per group, none for a single group."""
        return len(self.groups) if len(self.groups) > 1 else 0

    @property
    def cls_dim(self) -> int:
        return len(self.attributes)

    @property
    def c_dim(self) -> int:
        return self.cls_dim + self.mask_dim

    def group_slice(self, group: int) -> slice:
        start = sum(len(g) for g in self.groups[:group])
        return slice(start, start + len(self.groups[group]))

    def group_of(self, attribute: str) -> int:
        for i, g in enumerate(self.groups):
            if attribute in g:
                return i
        raise KeyError(attribute)


@dataclass(frozen=True)
class StarGANConfig:
    image_size: int = 64  # side of the square face crop the model sees
    conv_dim: int = 64  # channels of G's first conv (doubles with each downsampling)
    g_repeat_num: int = 6  # residual blocks in G
    d_conv_dim: int = 64  # channels of D's first conv
    d_repeat_num: int = 5  # stride-2 convs in D (image_size must be divisible by 2**d_repeat_num)
    labels: LabelSchema = LabelSchema()  # label groups, mask vector and exclusive attributes
    track_running_stats: bool = False  # True only for imported official checkpoints (they carry the buffers)
    # "image": official G writes every pixel (tanh); "masked": G = M*C + (1-M)*x (attention mask M);
    # "residual": G = clamp(x + Δ, -1, 1), Δ from the same trunk and a last conv without tanh (US-GAN)
    output: str = "image"
    # "deconv": official transposed convs; "deconv_blur": each followed by a fixed [1,2,1] blur (same weights);
    # "resize": nearest x2 + 3x3 conv
    upsample: str = "deconv"
    # D's conditional real/fake head: per attribute, one logit map for each value (0, 1); the conditional recipe's
    cond_head: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.labels, dict):
            object.__setattr__(self, "labels", LabelSchema(**self.labels))
        if self.output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {OUTPUT_MODES}, got {self.output!r}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        if self.image_size % (2**self.d_repeat_num):
            raise ValueError(f"image_size {self.image_size} is not divisible by 2**d_repeat_num ({self.d_repeat_num})")


@dataclass(frozen=True)
class CGANConfig:
    classes: tuple[str, ...] = DIGIT_CLASSES  # class names, index = label
    noise_dim: int = 100  # length of the noise vector z
    image_size: int = 28  # side of the square grayscale image
    g_hidden: tuple[int, ...] = (128, 256, 512, 1024)  # widths of G's hidden layers
    d_hidden: tuple[int, ...] = (512, 512, 512)  # widths of D's hidden layers
    d_projection: bool = False  # D adds a projection term <embed(y), features> (Miyato & Koyama 2018)
    dataset: str = "mnist"  # what the classes are drawn from (shown in the UI)

    def __post_init__(self) -> None:
        for name in ("classes", "g_hidden", "d_hidden"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclass(frozen=True)
class GuideConfig:
    """The robust attribute classifier that guides G's training (and, with another seed, judges it)."""

    attributes: tuple[str, ...] = GROUP_A + GROUP_B  # one logit per attribute, in the label schema's order
    image_size: int = 64  # side of the face crop it reads, in G's [-1, 1] range
    width: int = 32  # channels of the first block (doubling with each of the four stride-2 blocks)
    blocks: int = 4  # stride-2 conv blocks before the global average pool

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", tuple(self.attributes))


def config_to_json(cfg: Any) -> str:
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True)


def config_from_json(cls: type, text: str) -> Any:
    """Rebuild a config dataclass from JSON, ignoring unknown keys written by newer versions."""
    data = json.loads(text)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
