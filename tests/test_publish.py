"""Deployment, offline: the publish dry run, the model card's front matter, loading weights from a Hub-style cache."""

import fnmatch
import shutil
from pathlib import Path

import pytest
import yaml

from stargan_app.checkpoint import DEFAULT_FILES, WEIGHTS_DIR
from stargan_app.cli import main as cli_main
from stargan_app.publish import split_front_matter, strip_front_matter

ROOT = Path(__file__).resolve().parents[1]


def lfs_patterns(gitattributes: Path) -> list[str]:
    return [line.split()[0] for line in gitattributes.read_text().splitlines() if "filter=lfs" in line]


def test_repo_tracks_weights_with_lfs():
    patterns = lfs_patterns(ROOT / ".gitattributes")
    assert any(fnmatch.fnmatch("stargan_celeba.safetensors", p) for p in patterns)


def test_dry_run_with_a_model_repo_keeps_weights_out_of_the_space(tmp_path):
    assert cli_main(["publish", "--space", "me/editor", "--model-repo", "me/weights", "--dry-run", str(tmp_path)]) == 0
    space, model = tmp_path / "space", tmp_path / "model"
    meta, _ = split_front_matter((space / "README.md").read_text())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["suggested_hardware"] == "cpu-basic"
    assert meta["models"] == ["me/weights"]
    assert meta["license"] == "other" and meta["license_name"]  # code MIT, face weights research-only (CelebA)
    present = [name for name in DEFAULT_FILES.values() if (WEIGHTS_DIR / name).is_file()]
    repo, files = meta["preload_from_hub"][0].split(" ")
    assert repo == "me/weights" and sorted(files.split(",")) == sorted(present)
    assert not list(space.rglob("*.safetensors")) and (space / "weights" / "HUB_REPO").read_text().strip() == "me/weights"
    assert (space / "app.py").is_file() and (space / "pre-requirements.txt").is_file() and not list(space.rglob("__pycache__"))
    assert sorted(p.name for p in model.glob("*.safetensors")) == sorted(present)
    card, _ = split_front_matter((model / "README.md").read_text())
    for key in (
        "license",
        "license_name",
        "license_link",
        "library_name",
        "pipeline_tag",
        "datasets",
        "metrics",
        "tags",
        "model-index",
    ):
        assert key in card, key
    assert card["license"] == "other" and card["pipeline_tag"] == "image-to-image"
    results = card["model-index"][0]["results"]
    assert results and all(isinstance(m["value"], (int, float)) for r in results for m in r["metrics"])


def test_dry_run_without_a_model_repo_ships_lfs_tracked_weights(tmp_path):
    assert cli_main(["publish", "--space", "me/editor", "--dry-run", str(tmp_path)]) == 0
    space = tmp_path / "space"
    shipped = list(space.glob("weights/*.safetensors"))
    patterns = lfs_patterns(space / ".gitattributes")
    assert shipped and all(any(fnmatch.fnmatch(p.name, pat) for pat in patterns) for p in shipped)
    assert (
        "preload_from_hub" not in split_front_matter((space / "README.md").read_text())[0]
        or not split_front_matter((space / "README.md").read_text())[0]["preload_from_hub"]
    )


def test_publish_without_a_token_is_one_clear_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert cli_main(["publish", "--space", "me/editor"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1


def test_about_text_has_no_yaml():
    text = (WEIGHTS_DIR / "README.md").read_text()
    assert text.startswith("---\n") and yaml.safe_load(text.split("---\n")[1])
    shown = strip_front_matter(text)
    assert not shown.startswith("---") and "license_name" not in shown and shown.startswith("# Model card")


def test_weights_load_from_a_hub_style_cache_offline(tmp_path, monkeypatch):
    from huggingface_hub import hf_hub_download

    from stargan_app.checkpoint import load_weights

    name = DEFAULT_FILES["mnist"]
    if not (WEIGHTS_DIR / name).is_file():
        pytest.skip("no shipped MNIST weights")
    repo = tmp_path / "models--me--weights"
    revision = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    shutil.copy2(WEIGHTS_DIR / name, snapshot / name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = hf_hub_download("me/weights", name, cache_dir=str(tmp_path), local_files_only=True)
    assert load_weights(path, kind="cgan").config.dataset == "mnist"
