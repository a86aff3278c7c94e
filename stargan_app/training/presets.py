"""Named StarGAN recipes: the configurations that are trained, as code (as nanoGPT keeps its working configs as files).

`train stargan --preset NAME` starts from one; flags given beside it override its fields. Without --preset a run
trains the paper's ("paper": every field at its default). docs/training.md quotes the campaign's fields, and a test
checks that the two agree.
"""

from __future__ import annotations

from stargan_app.training.options import StarGANTrainConfig

PAPER = StarGANTrainConfig()  # yunjey/stargan's: WGAN-GP, n_critic 5, full width, 200,000 steps

# the face-model campaign's (docs/training.md): the shipped file's line, continued session by session
CAMPAIGN = StarGANTrainConfig(
    conv_dim=32,
    g_repeat_num=4,
    d_conv_dim=32,
    recipe="conditional",
    output="residual",  # won its bake-off against "image" (2026-12-07, docs/training-log.md)
    upsample="deconv_blur",
    augment="translation,cutout",
    lambda_id=10.0,
    cond_changed_weight=4.0,
    compile=True,
    guide="weights/stargan_guide.safetensors",
    lambda_guide=3.0,
    guide_keep=1.0,
    num_iters=80_000,
    save_every=100,
)

PRESETS: dict[str, StarGANTrainConfig] = {"paper": PAPER, "campaign": CAMPAIGN}
DEFAULT_PRESET = "paper"  # what `train stargan` trains without --preset
