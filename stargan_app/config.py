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


OUTPUT_MODES = ("image", "residual")
UPSAMPLE_MODES = ("deconv", "deconv_blur")
# values of a choice field that lost their bake-offs and were removed (docs/training-log.md); a file or run that
# names one is refused with this note rather than with "unknown value"
REMOVED_CHOICES = {
    "output": {"masked": "G's attention-mask output lost two bake-offs"},
    "upsample": {"resize": "nearest + conv upsampling was never measured to pay"},
    "targets": {"balanced": "one-attribute target draws lost their bake-off"},
    "guide_mode": {"add": "the guide beside D's classification term was never measured to pay"},
}


def refuse_removed(values: dict[str, Any]) -> None:
    """Fail with its note when a config (a file's, a run's config.json) names a removed option value."""
    for name, value in values.items():
        if isinstance(value, str) and value in REMOVED_CHOICES.get(name, {}):
            raise ValueError(f"{name} {value!r} was removed ({REMOVED_CHOICES[name][value]}; see docs/training-log.md)")


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    """The one check of a choice field's value: a removed value gets its note, an unknown one the list."""
    refuse_removed({field: value})
    if value not in choices:
        raise ValueError(f"{field} must be one of {choices}, got {value!r}")


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
    # "image": official G writes every pixel (tanh); "residual": G = clamp(x + Δ, -1, 1), Δ from the same trunk
    # and a last conv without tanh (US-GAN)
    output: str = "image"
    # "deconv": official transposed convs; "deconv_blur": each followed by a fixed [1,2,1] blur (same weights)
    upsample: str = "deconv"
    # D's conditional real/fake head: per attribute, one logit map for each value (0, 1); the conditional recipe's
    cond_head: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.labels, dict):
            object.__setattr__(self, "labels", LabelSchema(**self.labels))
        check_choice("output", self.output, OUTPUT_MODES)
        check_choice("upsample", self.upsample, UPSAMPLE_MODES)
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
