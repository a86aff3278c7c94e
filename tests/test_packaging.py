"""Packaging: `pip install .` into a fresh venv (offline: --no-deps, this interpreter's packages), the console script,
the package outside a checkout, what the Space installs, and training without TensorBoard."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from packaging.requirements import Requirement
from test_training import tiny_cgan_config

from stargan_app.cli import main as cli_main
from stargan_app.training import runs

SOURCES = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "requirements.txt",
    "stargan_app",
)  # what a source distribution holds


def requirement_lines(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def normalized(requirements: list[str]) -> list[str]:
    return [str(Requirement(r)) for r in requirements]


def run(*cmd: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv that sees this interpreter's packages (torch, gradio, ...) but not the checkout, with the package
    installed by pip from a copy of the sources (an in-tree build would leave build/ in the checkout)."""
    tmp = tmp_path_factory.mktemp("pip")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src)
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    # this interpreter's installed packages, and not the checkout (works from inside a venv too, unlike
    # --system-site-packages, which would reach only the base interpreter's)
    site_dirs = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (next((venv / "lib").glob("python*/site-packages")) / "outer.pth").write_text("\n".join(site_dirs) + "\n")
    offline = ("--no-deps", "--no-build-isolation", "--no-index")  # setuptools and the dependencies come from here
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", *offline, src, cwd=tmp)
    return venv


def test_pip_install_gives_a_console_script_that_runs_every_command(installed):
    help_text = run(installed / "bin" / "stargan-app", "--help", cwd=installed).stdout
    assert help_text.startswith("usage: stargan-app") and "serves the web app" in " ".join(help_text.split())
    for command in ("train", "eval", "export", "publish"):
        assert re.search(rf"\b{command}\b", help_text), command


def test_the_installed_package_works_outside_a_checkout(installed):
    code = """
import importlib.metadata as md, json, stargan_app
from stargan_app import FaceEditor, WeightsError
try:
    FaceEditor.from_pretrained()
    error = None
except WeightsError as e:
    error = str(e)
dist = md.distribution("stargan-app")
tops = sorted({
    f.parts[0] for f in dist.files if f.parts[0] not in ("..", "bin") and not f.parts[0].endswith(".dist-info")
})
print(json.dumps({"file": stargan_app.__file__, "error": error, "requires": dist.requires, "tops": tops}))
"""
    found = json.loads(run(installed / "bin" / "python", "-c", code, cwd=installed).stdout.splitlines()[-1])
    assert Path(found["file"]).is_relative_to(installed) and not Path(found["file"]).is_relative_to(ROOT)
    assert found["tops"] == ["stargan_app"]  # no assets/, weights/ or tests/ at the top of site-packages
    # no weights next to the package and no Hub repo set: one sentence on how to get them
    assert "STARGAN_APP_HUB_REPO" in found["error"] and found["error"].count(". ") == 0
    serving = [r for r in found["requires"] if "extra ==" not in r]
    assert normalized(serving) == normalized(requirement_lines(ROOT / "requirements.txt"))  # one list of dependencies


def test_the_space_installs_the_mcp_server_and_no_training_tools():
    serving = requirement_lines(ROOT / "requirements.txt") + requirement_lines(ROOT / "pre-requirements.txt")
    assert not [r for r in serving if r.startswith("tensorboard")]
    assert any(r.startswith("gradio[mcp]") for r in serving)  # the MCP server runs on the Space, as in CI
    dev = requirement_lines(ROOT / "requirements-dev.txt")
    assert dev[0] == "-r requirements.txt" and any(r.startswith("tensorboard") for r in dev)


def test_train_without_tensorboard_trains_and_says_once_how_to_get_its_logs(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    runs._say_tensorboard_is_missing.cache_clear()
    for k in range(2):  # `train all` runs several trainings in one process
        (tmp_path / str(k)).mkdir()
        cfg = tiny_cgan_config(tmp_path / str(k))
        args = ["train", "cgan", "--data-dir", cfg.data_dir, "--run-dir", cfg.run_dir, "--out", cfg.out]
        assert cli_main([*args, "--batch-size", "16", "--epochs", "1", "--sample-every", "0", "--device", "cpu"]) == 0
        assert Path(cfg.out).is_file() and not (Path(cfg.run_dir) / "tb").exists()
    assert capsys.readouterr().out.count("pip install tensorboard") == 1
