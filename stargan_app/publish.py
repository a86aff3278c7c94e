"""`app.py publish`: stage (and upload) the Space and the model repo that holds the weights and their card.

The Space gets the app's code, assets and requirements. With a model repo, the weights stay out of the Space:
its README front matter lists them in `preload_from_hub` (fetched at build time into the Hub cache) and
weights/HUB_REPO names the repo for `hf_hub_download`. Without one, the weights go into the Space itself, where
`.gitattributes` tracks `*.safetensors` with LFS as the Hub requires for binary files.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from stargan_app.checkpoint import DEFAULT_FILES, HUB_REPO_FILE, WEIGHTS_DIR
from stargan_app.errors import StarGANAppError

ROOT = WEIGHTS_DIR.parent
SPACE_ITEMS = ("app.py", "stargan_app", "assets", "requirements.txt", "pre-requirements.txt", "README.md", ".gitattributes")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


class PublishError(StarGANAppError):
    """Publishing failed; the message is one sentence for the user."""


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(YAML front matter as a dict, the rest); ({}, text) when the text has none."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        return {}, text
    return yaml.safe_load(text[4:end]) or {}, text[end + 5 :]


def strip_front_matter(text: str) -> str:
    """The Markdown without its YAML block (for showing a model card in the app)."""
    return split_front_matter(text)[1].lstrip("\n")


def join_front_matter(meta: dict[str, Any], body: str) -> str:
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n" + body


def stage(out_dir: str | Path, space: str, model_repo: str | None = None) -> tuple[Path, Path | None]:
    """Write exactly what would be uploaded: out_dir/space and, with a model repo, out_dir/model."""
    out = Path(out_dir)
    space_dir, model_dir = out / "space", (out / "model" if model_repo else None)
    for folder in (space_dir, model_dir):
        if folder is not None and folder.exists():
            shutil.rmtree(folder)
    space_dir.mkdir(parents=True)
    for item in SPACE_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, space_dir / item, ignore=IGNORED)
        elif src.is_file():
            shutil.copy2(src, space_dir / item)
    weights = [WEIGHTS_DIR / name for name in DEFAULT_FILES.values() if (WEIGHTS_DIR / name).is_file()]
    meta, body = split_front_matter((ROOT / "README.md").read_text())
    (space_dir / "weights").mkdir()
    if model_repo:
        meta["models"] = [model_repo]
        meta["preload_from_hub"] = [f"{model_repo} {','.join(p.name for p in weights)}"]
        (space_dir / "weights" / HUB_REPO_FILE).write_text(model_repo + "\n")
        model_dir.mkdir(parents=True)
        for path in weights + [WEIGHTS_DIR / "README.md"]:
            shutil.copy2(path, model_dir / path.name)
    else:
        for path in weights + [WEIGHTS_DIR / "README.md"]:
            shutil.copy2(path, space_dir / "weights" / path.name)
    (space_dir / "README.md").write_text(join_front_matter(meta, body))
    return space_dir, model_dir


def publish(space: str, model_repo: str | None = None, dry_run: str | None = None, token: str | None = None) -> str:
    """Stage, then (unless dry_run) create the repos and upload; returns what was done, in one line."""
    import tempfile

    if dry_run:
        space_dir, model_dir = stage(dry_run, space, model_repo)
        return f"staged the Space in {space_dir}" + (f" and the model repo in {model_dir}" if model_dir else "")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        space_dir, model_dir = stage(tmp, space, model_repo)
        try:
            api.whoami()
        except (LocalTokenNotFoundError, OSError) as e:
            raise PublishError(f"No Hugging Face token: run `huggingface-cli login` or set HF_TOKEN ({e}).") from None
        try:
            if model_dir is not None:
                api.create_repo(model_repo, repo_type="model", exist_ok=True)
                api.upload_folder(
                    repo_id=model_repo,
                    repo_type="model",
                    folder_path=str(model_dir),
                    commit_message="Weights and model card from stargan-app",
                )
            api.create_repo(space, repo_type="space", space_sdk="gradio", exist_ok=True)
            api.upload_folder(repo_id=space, repo_type="space", folder_path=str(space_dir), commit_message="stargan-app")
        except HfHubHTTPError as e:
            raise PublishError(
                f"The Hub refused the upload to {space}{' / ' + model_repo if model_repo else ''}: {str(e).splitlines()[0]}"
            ) from None
    return f"published https://huggingface.co/spaces/{space}" + (f" and https://huggingface.co/{model_repo}" if model_repo else "")
