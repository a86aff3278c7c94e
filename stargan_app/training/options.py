"""Training options: one frozen dataclass per trainer, one field per `app.py train` flag with its help text beside it;
a run saves its options as config.json."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from stargan_app.config import GROUP_A, GROUP_B, OUTPUT_MODES, UPSAMPLE_MODES, check_choice

RECIPE_NAMES = ("wgan-gp", "v2", "conditional")  # training/recipes.py's objectives, by name
AUGMENTATIONS = ("translation", "cutout")  # training/augment.py's DiffAugment transforms, by name
PAPER_N_CRITIC = 5  # D steps per G step of the paper's WGAN-GP; every other recipe takes 1


def opt(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field whose help text becomes the CLI flag's documentation, and its choices the flag's."""
    return field(default=default, metadata={"help": help, "choices": choices})


def parse_policy(spec: str) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'); '' -> () (no augmentation)."""
    names = tuple(name.strip() for name in spec.split(",") if name.strip())
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown}: choose from {', '.join(AUGMENTATIONS)}")
    return names


def check_choices(cfg: Any) -> None:
    """Every choice field of a training config holds one of its choices (the one check, at construction)."""
    for f in fields(cfg):
        if f.metadata.get("choices"):
            check_choice(f.name, getattr(cfg, f.name), f.metadata["choices"])


@dataclass(frozen=True)
class RunConfig:
    """What every GAN run has: optimiser betas, the EMA of G, seeding, logging, checkpoints, device, export."""

    beta1: float = opt(0.5, "Adam beta1")
    beta2: float = opt(0.999, "Adam beta2")
    ema_decay: float = opt(0.999, "the exported G is this moving average of G's weights (0 = the last step's G)")
    seed: int = opt(0, "random seed (batches are a pure function of seed, rank and step)")
    log_every: int = opt(50, "steps between logged losses (the only host syncs)")
    sample_every: int = opt(1000, "steps between sample grids (0 = never)")
    save_every: int = opt(1000, "steps between resume checkpoints")
    keep_checkpoints: int = opt(2, "resume checkpoints kept on disk")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    fp16_export: bool = opt(True, "store exported weights as fp16 (half the size)")


@dataclass(frozen=True)
class StarGANTrainConfig(RunConfig):
    data_dir: str = opt("../shared/data/celeba-10k", "CelebA folder: img_align_celeba/ + list_attr_celeba.txt")
    run_dir: str = opt("runs/stargan", "where checkpoints, samples, TensorBoard logs go")
    out: str = opt("weights/stargan_celeba.safetensors", "weights file written at the end")
    image_size: int = opt(64, "training resolution (64, 128 or 256)")
    conv_dim: int = opt(64, "G width")
    g_repeat_num: int = opt(6, "residual blocks in G")
    d_conv_dim: int = opt(64, "D width")
    d_repeat_num: int = opt(5, "stride-2 convs in D (6 for 128 px as in the paper)")
    output: str = opt(
        "image",
        "G output: 'image' (official, rewrites every pixel) or 'residual' (clamp(x + Δ, -1, 1); an image-output file "
        "seeds it with its last conv zeroed: G starts at the identity)",
        OUTPUT_MODES,
    )
    upsample: str = opt(
        "deconv",
        "G upsampling: 'deconv' (official transposed convs) or 'deconv_blur' (each followed by a fixed [1,2,1] blur: "
        "no checkerboard, same weights)",
        UPSAMPLE_MODES,
    )
    recipe: str = opt(
        "wgan-gp",
        "'wgan-gp' (paper: WGAN-GP, n_critic 5), 'v2' (StarGAN v2: non-saturating + lazy R1, EMA G) or 'conditional' "
        "(v2 with a conditional real/fake head per attribute and value in D, and no classification term for G)",
        RECIPE_NAMES,
    )
    group_a: str = opt(",".join(GROUP_A), "comma-separated attributes of label group A")
    group_b: str = opt(",".join(GROUP_B), "comma-separated attributes of label group B ('' for one group)")
    test_size: int = opt(1000, "last images held out from training (evaluation split)")
    max_images: int = opt(0, "use at most this many training images (0 = all)")
    batch_size: int = opt(16, "images per batch per process")
    num_iters: int = opt(200_000, "total training steps (each step trains D; G every n_critic steps)")
    n_critic: int = opt(0, "D updates per G update (0 = the recipe's: 5 for wgan-gp, 1 for v2 and conditional)")
    g_lr: float = opt(1e-4, "G learning rate")
    d_lr: float = opt(1e-4, "D learning rate")
    lambda_cls: float = opt(1.0, "weight of the classification loss")
    lambda_rec: float = opt(10.0, "weight of the reconstruction loss")
    lambda_id: float = opt(
        0.0, "weight of the identity loss: G at the source labels returns the input (AttGAN; 0 = off, as the paper)"
    )
    lambda_cond: float = opt(1.0, "weight of the conditional head's loss, for D and G (conditional recipe)")
    cond_changed_weight: float = opt(
        1.0,
        "in the conditional head's fake terms (D's and G's), weight of the attributes a target changes over those it "
        "keeps (1 = all alike; the kept ones look like the real face and teach the head little)",
    )
    guide: str = opt(
        "",
        "a robust attribute classifier (`train guide`) whose BCE on G's fakes at their targets pays G for the "
        "attributes, in place of D's classification term; frozen ('' = none)",
    )
    lambda_guide: float = opt(1.0, "weight of the guide's term in G's loss")
    guide_keep: float = opt(
        0.0,
        "weight, inside the guide's term, of its BCE on the other label group's attributes towards its own reading of "
        "the input face (0 = off): without it a hair edit that adds glasses the guide reads as hair is not charged",
    )
    d_warmup: int = opt(
        0, "steps from step 0 on which only D trains (the conditional head learns the attributes before G follows it)"
    )
    lambda_gp: float = opt(10.0, "weight of the gradient penalty (wgan-gp)")
    lambda_r1: float = opt(1.0, "weight of the R1 penalty on real images (v2)")
    r1_every: int = opt(4, "lazy R1: penalise every this many D steps, scaled up to match (v2)")
    augment: str = opt(
        "",
        "DiffAugment policy for every image D sees, real and fake: comma-separated from 'translation' (reflect-padded "
        "shift up to 1/8) and 'cutout' (a grey square of 1/4 side); '' = none",
    )
    init_weights: str = opt("", "start G and D from this stargan weights file (fine-tune; '' = random init)")
    continue_from: str = opt(
        "",
        "continue a campaign from a training-state file (`export --training-state`): G, its moving average and D, "
        "the step count (so the LR schedule: keep --num-iters the campaign's total) and the cumulative totals go on; "
        "Adam restarts",
    )
    amp: bool = opt(True, "bf16 autocast on CUDA, and on CPUs with native bf16 (AVX512-BF16 / AMX)")
    compile: bool = opt(
        False, "torch.compile G (D stays eager: its R1 and gradient penalty need double backward); pays on the CPU too"
    )

    def __post_init__(self) -> None:
        check_choices(self)
        parse_policy(self.augment)
        if self.continue_from and self.init_weights:
            raise ValueError("--continue-from and --init-weights both name a starting point: give one")


@dataclass(frozen=True)
class CGANTrainConfig(RunConfig):
    dataset: str = opt("mnist", "which digits or clothes", ("mnist", "fashion"))
    data_dir: str = opt("", "folder with the four idx .gz files ('' = download with torchvision)")
    run_dir: str = opt("", "run folder ('' = runs/cgan_<dataset>)")
    out: str = opt("", "weights file ('' = weights/cgan_<dataset>.safetensors)")
    noise_dim: int = opt(100, "length of the noise vector")
    batch_size: int = opt(64, "images per batch per process")
    epochs: int = opt(30, "passes over the training set")
    lr: float = opt(2e-4, "Adam learning rate (G and D)")
    d_projection: bool = opt(True, "projection discriminator: class-consistency term <embed(y), features>")
    log_every: int = opt(200, "steps between logged losses")
    sample_every: int = opt(2000, "steps between sample grids (0 = never)")
    save_every: int = opt(2000, "steps between resume checkpoints")
    fp16_export: bool = opt(False, "store exported weights as fp16")

    def __post_init__(self) -> None:
        check_choices(self)


@dataclass(frozen=True)
class GuideTrainConfig(RunConfig):
    data_dir: str = opt("../shared/data/celeba-10k", "CelebA folder: img_align_celeba/ + list_attr_celeba.txt")
    run_dir: str = opt("runs/guide", "where checkpoints and TensorBoard logs go")
    out: str = opt("weights/stargan_guide.safetensors", "weights file written at the end")
    image_size: int = opt(64, "crop side (G's training resolution)")
    width: int = opt(32, "channels of the first of the four stride-2 blocks")
    test_size: int = opt(1000, "last images held out (the same ids as every StarGAN run)")
    max_images: int = opt(0, "use at most this many training images (0 = all)")
    batch_size: int = opt(64, "images per batch")
    epochs: int = opt(3, "passes over the training set")
    lr: float = opt(1e-3, "Adam learning rate")
    radius: float = opt(3.0, "PGD-L2 radius, in the [-1, 1] model range over the whole 3xSxS crop")
    pgd_steps: int = opt(3, "PGD steps per batch (each of step size 2.5 * radius / steps)")
    radius_warmup: float = opt(0.5, "epochs over which the radius ramps linearly from 0 to --radius")
    ema_decay: float = opt(0.0, "unused by the guide: it is exported as trained")
    log_every: int = opt(20, "steps between logged losses and accuracies")
    save_every: int = opt(50, "steps between resume checkpoints")
    sample_every: int = opt(0, "unused by the guide")
    amp: bool = opt(True, "bf16 autocast on CUDA, and on CPUs with native bf16 (AVX512-BF16 / AMX)")
    fp16_export: bool = opt(False, "store exported weights as fp16")
