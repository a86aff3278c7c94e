"""Frozen config dataclasses: model configs (carried inside every weights file) and training configs."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
GROUP_A = ("Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
GROUP_B = ("Wearing_Earrings", "Wearing_Hat", "Mustache", "Eyeglasses")
DIGIT_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


OUTPUT_MODES = ("image", "masked")
UPSAMPLE_MODES = ("deconv", "deconv_blur", "resize")


def opt(default: Any, help: str) -> Any:
    """A dataclass field whose help text becomes the CLI flag's documentation."""
    return field(default=default, metadata={"help": help})


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
    output: str = "image"  # "image": official G writes every pixel; "masked": G = M*C + (1-M)*x (attention mask M)
    # "deconv": official transposed convs; "deconv_blur": each followed by a fixed [1,2,1] blur (same weights);
    # "resize": nearest x2 + 3x3 conv
    upsample: str = "deconv"

    def __post_init__(self) -> None:
        if isinstance(self.labels, dict):
            object.__setattr__(self, "labels", LabelSchema(**self.labels))
        if self.output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {OUTPUT_MODES}, got {self.output!r}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        if self.image_size % (2 ** self.d_repeat_num):
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


def config_to_json(cfg: Any) -> str:
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True)


def config_from_json(cls: type, text: str) -> Any:
    """Rebuild a config dataclass from JSON, ignoring unknown keys written by newer versions."""
    data = json.loads(text)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


# ---------------------------------------------------------------- training configs


@dataclass(frozen=True)
class StarGANTrainConfig:
    data_dir: str = opt("../shared/data/celeba-10k", "CelebA folder: img_align_celeba/ + list_attr_celeba.txt")
    run_dir: str = opt("runs/stargan", "where checkpoints, samples, TensorBoard logs go")
    out: str = opt("weights/stargan_celeba.safetensors", "weights file written at the end")
    image_size: int = opt(64, "training resolution (64, 128 or 256)")
    conv_dim: int = opt(64, "G width")
    g_repeat_num: int = opt(6, "residual blocks in G")
    d_conv_dim: int = opt(64, "D width")
    d_repeat_num: int = opt(5, "stride-2 convs in D (6 for 128 px as in the paper)")
    output: str = opt("image", "G output: 'image' (official, rewrites every pixel) or 'masked' (colour + attention mask)")
    upsample: str = opt("deconv", "G upsampling: 'deconv' (official transposed convs), 'deconv_blur' (each followed by a "
                        "fixed [1,2,1] blur: no checkerboard, same weights) or 'resize' (nearest + 3x3 conv)")
    recipe: str = opt("wgan-gp", "'wgan-gp' (paper: WGAN-GP, n_critic 5) or 'v2' (StarGAN v2: non-saturating + lazy R1, EMA G)")
    group_a: str = opt(",".join(GROUP_A), "comma-separated attributes of label group A")
    group_b: str = opt(",".join(GROUP_B), "comma-separated attributes of label group B ('' for one group)")
    test_size: int = opt(1000, "last images held out from training (evaluation split)")
    max_images: int = opt(0, "use at most this many training images (0 = all)")
    batch_size: int = opt(16, "images per batch per process")
    num_iters: int = opt(200_000, "total training steps (each step trains D; G every n_critic steps)")
    n_critic: int = opt(0, "D updates per G update (0 = the recipe's: 5 for wgan-gp, 1 for v2)")
    g_lr: float = opt(1e-4, "G learning rate")
    d_lr: float = opt(1e-4, "D learning rate")
    beta1: float = opt(0.5, "Adam beta1")
    beta2: float = opt(0.999, "Adam beta2")
    lambda_cls: float = opt(1.0, "weight of the classification loss")
    lambda_rec: float = opt(10.0, "weight of the reconstruction loss")
    lambda_gp: float = opt(10.0, "weight of the gradient penalty (wgan-gp)")
    lambda_r1: float = opt(1.0, "weight of the R1 penalty on real images (v2)")
    r1_every: int = opt(4, "lazy R1: penalise every this many D steps, scaled up to match (v2)")
    lambda_mask: float = opt(0.05, "weight of mean(M) on the translation pass (masked G keeps edits local)")
    lambda_mask_tv: float = opt(0.05, "weight of the total variation of M (smooth masks)")
    mask_warmup: int = opt(2000, "steps before the mask penalties start, then ramped over as many (collapse guard)")
    ema_decay: float = opt(0.999, "the exported G is this moving average of G's weights (0 = the last step's G)")
    seed: int = opt(0, "random seed (batches are a pure function of seed, rank and step)")
    init_weights: str = opt("", "start G and D from this stargan weights file (fine-tune; '' = random init)")
    log_every: int = opt(50, "steps between logged losses (the only host syncs)")
    sample_every: int = opt(1000, "steps between sample grids (0 = never)")
    save_every: int = opt(1000, "steps between resume checkpoints")
    keep_checkpoints: int = opt(2, "resume checkpoints kept on disk")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    amp: bool = opt(True, "bf16 autocast on CUDA, and on CPUs with native bf16 (AVX512-BF16 / AMX)")
    compile: bool = opt(False, "torch.compile G and D (CUDA)")
    fp16_export: bool = opt(True, "store exported weights as fp16 (half the size)")


@dataclass(frozen=True)
class CGANTrainConfig:
    dataset: str = opt("mnist", "mnist or fashion")
    data_dir: str = opt("", "folder with the four idx .gz files ('' = download with torchvision)")
    run_dir: str = opt("", "run folder ('' = runs/cgan_<dataset>)")
    out: str = opt("", "weights file ('' = weights/cgan_<dataset>.safetensors)")
    noise_dim: int = opt(100, "length of the noise vector")
    batch_size: int = opt(64, "images per batch per process")
    epochs: int = opt(30, "passes over the training set")
    lr: float = opt(2e-4, "Adam learning rate (G and D)")
    d_projection: bool = opt(True, "projection discriminator: class-consistency term <embed(y), features>")
    ema_decay: float = opt(0.999, "the exported G is this exponential moving average of G's weights (0 = off)")
    beta1: float = opt(0.5, "Adam beta1")
    beta2: float = opt(0.999, "Adam beta2")
    seed: int = opt(0, "random seed")
    log_every: int = opt(200, "steps between logged losses")
    sample_every: int = opt(2000, "steps between sample grids (0 = never)")
    save_every: int = opt(2000, "steps between resume checkpoints")
    keep_checkpoints: int = opt(2, "resume checkpoints kept on disk")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    fp16_export: bool = opt(False, "store exported weights as fp16")
