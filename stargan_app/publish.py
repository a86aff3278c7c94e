"""`publish`: stage (and upload) the Space and the model repo that holds the weights and their card.

The Space gets the app's code, assets and requirements. With a model repo, the weights stay out of the Space:
its README front matter lists them in `preload_from_hub` (fetched at build time into the Hub cache) and
weights/HUB_REPO names the repo for `hf_hub_download`, both pinned to the commit this publish uploaded. Without
one, the weights go into the Space itself, where `.gitattributes` tracks `*.safetensors` with LFS as the Hub
requires for binary files. Both cards are read and written with huggingface_hub's ModelCard / SpaceCard, and the
Hub validates their metadata before anything is uploaded.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from huggingface_hub import ModelCard, SpaceCard

from stargan_app.checkpoint import DEFAULT_FILES, HUB_REPO_FILE, WEIGHTS_DIR, companion_files
from stargan_app.errors import StarGANAppError

ROOT = WEIGHTS_DIR.parent
SPACE_ITEMS = (
    "app.py",
    "stargan_app",
    "assets",
    "requirements.txt",
    "pre-requirements.txt",
    "README.md",
    "docs",  # the pages and pictures the README links to
    "LICENSE",
    ".gitattributes",
)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
# upload_folder deletes the repo's files that match these and are not in the new upload. Local weights win over the
# model repo, so weights left in a Space by an earlier publish would otherwise go on being served.
SPACE_DELETE = ["*.safetensors", "weights/*", "stargan_app/*", "assets/*", "docs/*"]
MODEL_DELETE = ["*.safetensors", "*.png"]
CARD_PICTURES = ("sheet.png", "regions.png", "hair_colours.png")  # what weights/README.md shows, uploaded beside it
LOGIN = "run `hf auth login` (a token with write access) or set HF_TOKEN"


class PublishError(StarGANAppError):
    """Publishing failed; the message is one sentence for the user."""


def shipped_weights() -> list[Path]:
    """The weights files to publish, with the region maps and the hair-colour model beside them where there are any."""
    names = [n for name in DEFAULT_FILES.values() for n in (name, *companion_files(name))]
    return [WEIGHTS_DIR / name for name in names if (WEIGHTS_DIR / name).is_file()]


def model_card_files() -> list[Path]:
    """weights/README.md and the pictures it shows."""
    return [WEIGHTS_DIR / "README.md"] + [WEIGHTS_DIR / n for n in CARD_PICTURES if (WEIGHTS_DIR / n).is_file()]


def model_card() -> ModelCard:
    """weights/README.md: the licence, datasets, metrics and eval results of the weights."""
    return ModelCard.load(WEIGHTS_DIR / "README.md")


def space_card(model_repo: str | None = None, revision: str | None = None) -> SpaceCard:
    """The repo's README as the Space's card; with a model repo, the Space preloads the weights from it (at
    `revision`, when given) instead of carrying them."""
    card = SpaceCard.load(ROOT / "README.md")
    card.data.models = [model_repo] if model_repo else []
    preload = f"{model_repo} {','.join(p.name for p in shipped_weights())}" + (f" {revision}" if revision else "")
    card.data.preload_from_hub = [preload] if model_repo else []
    return card


def stage(
    out_dir: str | Path, space: str, model_repo: str | None = None, revision: str | None = None
) -> tuple[Path, Path | None]:
    """Write exactly what would be uploaded: out_dir/space and, with a model repo, out_dir/model."""
    out = Path(out_dir)
    model_dir = stage_model(out / "model") if model_repo else None
    return stage_space(out / "space", model_repo, revision), model_dir


def stage_model(model_dir: Path) -> Path:
    _fresh(model_dir)
    for path in shipped_weights() + model_card_files():
        shutil.copy2(path, model_dir / path.name)
    return model_dir


def stage_space(space_dir: Path, model_repo: str | None = None, revision: str | None = None) -> Path:
    _fresh(space_dir)
    for item in SPACE_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, space_dir / item, ignore=IGNORED)
        elif src.is_file():
            shutil.copy2(src, space_dir / item)
    weights_dir = space_dir / "weights"
    weights_dir.mkdir()
    if model_repo:
        (weights_dir / HUB_REPO_FILE).write_text(model_repo + (f"@{revision}" if revision else "") + "\n")
    else:
        for path in shipped_weights() + model_card_files():
            shutil.copy2(path, weights_dir / path.name)
    space_card(model_repo, revision).save(space_dir / "README.md")
    return space_dir


def _fresh(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def publish(space: str, model_repo: str | None = None, dry_run: str | None = None, token: str | None = None) -> str:
    """Stage, then (unless dry_run) validate both cards on the Hub, create the repos and upload; returns what was
    done, in one line."""
    if dry_run:
        space_dir, model_dir = stage(dry_run, space, model_repo)
        return f"staged the Space in {space_dir}" + (f" and the model repo in {model_dir}" if model_dir else "")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    api = HfApi(token=token)
    try:
        api.whoami()
    except (LocalTokenNotFoundError, OSError) as e:
        raise PublishError(f"No Hugging Face token: {LOGIN} ({e}).") from None
    target = space + (f" / {model_repo}" if model_repo else "")
    try:
        for card, repo_type in ((model_card(), "model"), (space_card(model_repo), "space")):
            card.validate(repo_type=repo_type)
    except (ValueError, HfHubHTTPError) as e:
        raise PublishError(
            f"The Hub rejects the {repo_type} card's metadata, so nothing was uploaded: {_first_line(e)}"
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            revision = None
            if model_repo:
                api.create_repo(model_repo, repo_type="model", exist_ok=True)
                commit = api.upload_folder(
                    repo_id=model_repo,
                    repo_type="model",
                    folder_path=str(stage_model(Path(tmp) / "model")),
                    commit_message="Weights and model card from stargan-app",
                    delete_patterns=MODEL_DELETE,
                )
                revision = (
                    commit.oid
                )  # the Space loads exactly these weights, whatever is pushed to the model repo later
            api.create_repo(space, repo_type="space", space_sdk="gradio", exist_ok=True)
            api.upload_folder(
                repo_id=space,
                repo_type="space",
                folder_path=str(stage_space(Path(tmp) / "space", model_repo, revision)),
                commit_message="stargan-app",
                delete_patterns=SPACE_DELETE,
            )
        except HfHubHTTPError as e:
            raise PublishError(f"The Hub refused the upload to {target}: {_first_line(e)}") from None
    return f"published https://huggingface.co/spaces/{space}" + (
        f" and https://huggingface.co/{model_repo}" if model_repo else ""
    )


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]
