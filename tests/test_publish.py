"""Deployment, offline: the publish dry run, both cards as huggingface_hub reads them, what a real publish sends (to a
recording stand-in for HfApi), loading weights from a Hub-style cache."""

import fnmatch
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import ModelCard, RepoCard, SpaceCard
from huggingface_hub.utils import filter_repo_objects

from stargan_app import checkpoint, publish
from stargan_app.checkpoint import DEFAULT_FILES, WEIGHTS_DIR
from stargan_app.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")  # owner/name
COMMIT = "c0ffee" * 6 + "beef"  # 40 hex digits, as the Hub's commit ids
SHIPPED = sorted(p.name for p in publish.shipped_weights())  # the weights files and the region maps beside them


def lfs_patterns(gitattributes: Path) -> list[str]:
    return [line.split()[0] for line in gitattributes.read_text().splitlines() if "filter=lfs" in line]


def staged_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def deleted_by(delete_patterns: list[str], remote: list[str], uploaded: list[str]) -> list[str]:
    """The remote files upload_folder deletes: those matching delete_patterns that the upload does not replace."""
    return sorted(set(filter_repo_objects(remote, allow_patterns=delete_patterns)) - set(uploaded) - {".gitattributes"})


def test_repo_tracks_weights_with_lfs():
    patterns = lfs_patterns(ROOT / ".gitattributes")
    assert any(fnmatch.fnmatch("stargan_celeba.safetensors", p) for p in patterns)


def test_model_card_carries_what_the_hub_reads():
    card = ModelCard.load(WEIGHTS_DIR / "README.md")
    data = card.data
    assert data.license == "other" and data.license_name and data.license_link  # CelebA: research use only
    assert data.pipeline_tag == "image-to-image" and {"pytorch", "safetensors"} <= set(data.tags) and data.metrics
    assert data.library_name is None  # PyTorch is a framework tag; no library the Hub knows loads these files
    assert data.datasets and all(HUB_ID.match(d) for d in data.datasets), data.datasets
    results = data.eval_results
    assert results and all(isinstance(r.metric_value, (int, float)) for r in results)
    assert {r.dataset_type for r in results} == set(data.datasets)  # each result names its Hub dataset
    assert ModelCard(str(card)).data.to_dict() == data.to_dict()  # the metadata survives huggingface_hub's round trip
    assert card.text.lstrip().startswith("# Model card")


def test_dry_run_with_a_model_repo_keeps_weights_out_of_the_space(tmp_path):
    assert cli_main(["publish", "--space", "me/editor", "--model-repo", "me/weights", "--dry-run", str(tmp_path)]) == 0
    space, model = tmp_path / "space", tmp_path / "model"
    data = SpaceCard.load(space / "README.md").data
    assert data.sdk == "gradio" and data.sdk_version and data.app_file == "app.py" and data.python_version
    assert data.title and data.short_description and data.suggested_hardware == "cpu-basic"
    assert data.license == "other" and data.license_name  # code MIT, face weights research-only (CelebA)
    assert data.models == ["me/weights"]
    repo, files = data.preload_from_hub[0].split(" ")  # no revision in a dry run: nothing was uploaded to pin
    assert repo == "me/weights" and sorted(files.split(",")) == SHIPPED
    assert (
        not list(space.rglob("*.safetensors")) and (space / "weights" / "HUB_REPO").read_text().strip() == "me/weights"
    )
    assert {"app.py", "pre-requirements.txt", "requirements.txt", "LICENSE"} <= set(staged_files(space))
    assert not list(space.rglob("__pycache__"))
    assert staged_files(model) == sorted(
        [*SHIPPED, "README.md", "regions.png", "sheet.png", "hair_colours.png"]
    )  # the card's pictures too
    assert {"README.md", "docs/api.md", "docs/images/before_after.png"} <= set(staged_files(space))
    assert (
        ModelCard.load(model / "README.md").data.to_dict() == ModelCard.load(WEIGHTS_DIR / "README.md").data.to_dict()
    )


def test_dry_run_without_a_model_repo_ships_lfs_tracked_weights(tmp_path):
    assert cli_main(["publish", "--space", "me/editor", "--dry-run", str(tmp_path)]) == 0
    space = tmp_path / "space"
    shipped = list(space.glob("weights/*.safetensors"))
    patterns = lfs_patterns(space / ".gitattributes")
    assert shipped and all(any(fnmatch.fnmatch(p.name, pat) for pat in patterns) for p in shipped)
    data = SpaceCard.load(space / "README.md").data
    assert not data.preload_from_hub and not data.models


def test_publish_without_a_token_says_how_to_log_in(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert cli_main(["publish", "--space", "me/editor"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    assert "`hf auth login`" in err


class RecordingHub:
    """Stands in for HfApi and RepoCard.validate: records each call, and what each upload_folder would upload."""

    def __init__(self, monkeypatch, reject: str | None = None):
        self.calls: list[tuple] = []
        self.uploads: dict[str, dict] = {}
        hub = self

        class Api:
            def __init__(self, token=None):
                pass

            def whoami(self):
                return {"name": "me"}

            def create_repo(self, repo_id, repo_type, **kwargs):
                hub.calls.append(("create_repo", repo_id))

            def upload_folder(self, *, repo_id, folder_path, delete_patterns, **kwargs):
                hub.calls.append(("upload_folder", repo_id))
                folder = Path(folder_path)
                hub.uploads[repo_id] = {
                    "files": staged_files(folder),
                    "delete_patterns": delete_patterns,
                    "card": RepoCard.load(folder / "README.md", ignore_metadata_errors=True),
                    "hub_repo": marker.read_text().strip()
                    if (marker := folder / "weights" / "HUB_REPO").is_file()
                    else None,
                }
                return SimpleNamespace(oid=COMMIT)

        def validate(card, repo_type=None):
            hub.calls.append(("validate", repo_type))
            if repo_type == reject:
                raise ValueError(f"Invalid metadata in README.md.\n- {repo_type} card: bad")

        monkeypatch.setattr("huggingface_hub.HfApi", Api)
        monkeypatch.setattr(RepoCard, "validate", validate)


@pytest.mark.skipif(not SHIPPED, reason="no shipped weights")
def test_publish_validates_both_cards_first_pins_the_weights_commit_and_removes_stale_weights(monkeypatch):
    hub = RecordingHub(monkeypatch)
    assert publish.publish("me/editor", "me/weights").startswith("published")
    assert hub.calls[:2] == [("validate", "model"), ("validate", "space")]  # before anything is created or uploaded
    assert [c for c in hub.calls if c[0] == "upload_folder"] == [
        ("upload_folder", "me/weights"),
        ("upload_folder", "me/editor"),
    ]

    space, model = hub.uploads["me/editor"], hub.uploads["me/weights"]
    assert space["card"].data.preload_from_hub == [
        f"me/weights {','.join(p.name for p in publish.shipped_weights())} {COMMIT}"
    ]
    assert space["hub_repo"] == f"me/weights@{COMMIT}"  # hf_hub_download fetches that commit, not whatever main is then
    # a Space published earlier without a model repo: its weights (which would win over the model repo) and old code go
    earlier = [".gitattributes", "README.md", "app.py", "stargan_app/old_module.py", *(f"weights/{n}" for n in SHIPPED)]
    assert deleted_by(space["delete_patterns"], earlier, space["files"]) == sorted(
        ["stargan_app/old_module.py", *(f"weights/{n}" for n in SHIPPED)]
    )
    assert deleted_by(
        model["delete_patterns"], ["README.md", "renamed_weights.safetensors", "old.png", *SHIPPED], model["files"]
    ) == ["old.png", "renamed_weights.safetensors"]


@pytest.mark.skipif(not SHIPPED, reason="no shipped weights")
def test_a_republish_without_a_model_repo_keeps_the_spaces_new_weights(monkeypatch):
    hub = RecordingHub(monkeypatch)
    publish.publish("me/editor")
    space = hub.uploads["me/editor"]
    earlier = [*(f"weights/{n}" for n in SHIPPED), "weights/HUB_REPO", "weights/stale.safetensors"]
    assert deleted_by(space["delete_patterns"], earlier, space["files"]) == [
        "weights/HUB_REPO",
        "weights/stale.safetensors",
    ]
    assert not space["card"].data.preload_from_hub and space["hub_repo"] is None


def test_a_card_the_hub_rejects_stops_the_publish_before_any_upload(monkeypatch, capsys):
    hub = RecordingHub(monkeypatch, reject="space")
    assert cli_main(["publish", "--space", "me/editor", "--model-repo", "me/weights"]) == 2
    assert not [c for c in hub.calls if c[0] != "validate"]
    err = capsys.readouterr().err.strip()
    assert "space card" in err and "nothing was uploaded" in err and len(err.splitlines()) == 1


def test_about_tab_shows_the_model_card_without_its_metadata():
    blocks = pytest.importorskip("stargan_app.ui.blocks")
    shown = blocks.model_card_text(WEIGHTS_DIR / "README.md")
    assert shown.startswith("# Model card") and "license_name" not in shown


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An offline Hub cache holding the shipped MNIST weights as me/weights at COMMIT, and no local weights."""
    from huggingface_hub import constants

    name = DEFAULT_FILES["mnist"]
    if not (WEIGHTS_DIR / name).is_file():
        pytest.skip("no shipped MNIST weights")
    repo = tmp_path / "hub" / "models--me--weights"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("f" * 40)  # main has moved on since the Space was published
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    shutil.copy2(WEIGHTS_DIR / name, snapshot / name)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", tmp_path / "not-a-checkout" / "weights")
    return snapshot


def test_missing_weights_come_from_the_pinned_hub_commit(hub_cache, monkeypatch):
    monkeypatch.setenv(checkpoint.HUB_REPO_ENV, f"me/weights@{COMMIT}")
    path = checkpoint.resolve_weights("mnist", "mnist")
    assert path.parent.name == COMMIT
    assert checkpoint.load_weights(path, kind="cgan").config.dataset == "mnist"


def test_missing_weights_without_a_hub_repo_say_how_to_get_them(hub_cache, monkeypatch):
    monkeypatch.delenv(checkpoint.HUB_REPO_ENV, raising=False)
    with pytest.raises(checkpoint.WeightsError, match=checkpoint.HUB_REPO_ENV) as info:
        checkpoint.resolve_weights(None, "stargan")
    assert len(str(info.value).rstrip(".").split(". ")) == 1  # one sentence


@pytest.mark.parametrize("maps_on_the_hub", [True, False])
def test_hub_download_brings_the_region_maps_beside_the_weights(tmp_path, monkeypatch, maps_on_the_hub):
    calls = []

    def download(repo: str, filename: str) -> Path:
        calls.append(filename)
        if filename.endswith(checkpoint.REGIONS_SUFFIX) and not maps_on_the_hub:
            raise checkpoint.WeightsError("no such file")
        return tmp_path / filename

    monkeypatch.setattr(checkpoint, "_hub_download", download)
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", tmp_path / "not-a-checkout")
    monkeypatch.setenv(checkpoint.HUB_REPO_ENV, "me/weights")
    weights = DEFAULT_FILES["stargan"]
    assert checkpoint.resolve_weights(None, "stargan") == tmp_path / weights  # maps or not, the weights come
    assert calls == [
        weights,
        checkpoint.companion_name(weights),
        checkpoint.HAIR_COLOURS_FILE,
        checkpoint.keep_list_name(weights),
    ]


def test_publish_ships_the_region_maps_with_the_weights(tmp_path, monkeypatch):
    for name in (DEFAULT_FILES["stargan"], checkpoint.companion_name(DEFAULT_FILES["stargan"])):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setattr(publish, "WEIGHTS_DIR", tmp_path)
    assert [p.name for p in publish.shipped_weights()] == [
        "stargan_celeba.safetensors",
        "stargan_celeba.regions.safetensors",
    ]
