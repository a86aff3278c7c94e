"""Named recipes (training/presets.py): docs/training.md quotes the campaign's fields and trains it by name, the CLI
starts from a preset and says which it trains, and one step of each preset trains on the tiny fixtures."""

import dataclasses
import re
import shlex

import pytest
from conftest import ROOT, TINY_DIMS, TINY_STARGAN, tiny_guide_weights
from test_training import tiny_train_config

from stargan_app.cli import build_parser, stargan_config
from stargan_app.inference import FaceEditor
from stargan_app.training.options import StarGANTrainConfig
from stargan_app.training.presets import CAMPAIGN, DEFAULT_PRESET, PAPER, PRESETS
from stargan_app.training.stargan_loop import train_stargan

TRAINING_DOC = ROOT / "docs" / "training.md"


def documented_flags(name: str) -> list[str]:
    """The flags docs/training.md quotes for preset `name`: the code span after its `<!-- preset NAME -->` marker."""
    match = re.search(rf"<!-- preset {name} -->\s*`([^`]+)`", TRAINING_DOC.read_text())
    assert match, f"docs/training.md quotes no preset {name!r}"
    return shlex.split(match.group(1))


def test_the_documented_campaign_flags_are_the_campaign_preset():
    args = build_parser().parse_args(["train", "stargan", *documented_flags("campaign")])
    assert stargan_config(args) == CAMPAIGN  # the doc's flags on the paper's defaults give the preset exactly
    assert args.preset is None and CAMPAIGN != PAPER == StarGANTrainConfig()


def test_the_docs_train_the_campaign_by_its_preset_name():
    commands = re.findall(r"python app.py train stargan[^\n]*", TRAINING_DOC.read_text())
    campaign = [c for c in commands if "runs/campaign" in c]
    assert campaign and all("--preset campaign" in c or "--resume" in c for c in campaign), campaign
    assert "--conv-dim" not in " ".join(campaign)  # the command names the preset, not its flags


def test_train_stargan_says_which_preset_and_flags_override_it(capsys):
    plain = stargan_config(build_parser().parse_args(["train", "stargan"]))
    assert plain == PRESETS[DEFAULT_PRESET] == PAPER and "the paper's recipe" in capsys.readouterr().out
    args = build_parser().parse_args(["train", "stargan", "--preset", "campaign", "--lambda-guide", "2"])
    cfg = stargan_config(args)
    assert cfg == dataclasses.replace(CAMPAIGN, lambda_guide=2.0) and "preset 'campaign'" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_one_step_of_each_preset_trains_on_the_tiny_fixtures(tmp_path, name):
    """The preset's recipe, output, upsampling, augmentation and loss weights at the tiny size; a guide of the tiny
    size stands in for the shipped one, and G is not compiled (inductor would take minutes on a CPU)."""
    preset = PRESETS[name]
    small = tiny_train_config(tmp_path, num_iters=1, save_every=1, sample_every=0, n_critic=0)
    tiny = {f.name: getattr(small, f.name) for f in dataclasses.fields(small) if f.name in {*TINY_DIMS, "data_dir"}}
    guide = str(tiny_guide_weights(tmp_path / "guide.safetensors")) if preset.guide else ""
    runs = dict(run_dir=small.run_dir, out=small.out, test_size=4, batch_size=4, device="cpu", num_iters=1)
    cfg = dataclasses.replace(preset, **tiny, **runs, save_every=1, sample_every=0, guide=guide, compile=False)
    train_stargan(cfg)
    editor = FaceEditor.from_pretrained(cfg.out)
    stage = editor.info["stages"][-1]
    assert editor.config.image_size == TINY_STARGAN.image_size and stage["recipe"] == preset.recipe
    assert stage["steps"] == [0, 1] and editor.config.upsample == preset.upsample
