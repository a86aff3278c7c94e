"""The README's set-up commands are the ones CI runs, and the documentation's links and pictures exist."""

import re
import shlex
from pathlib import Path

import pytest
from conftest import ROOT

README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
DOCS = [README, ROOT / "weights" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def setup_commands(readme: str) -> list[list[list[str]]]:
    """The code blocks of the README's "Set-up" section, each split at `&&` into tokenised commands."""
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [[shlex.split(part) for part in block.strip().split("&&")] for block in blocks]


def ci_commands(script: str) -> list[list[str]]:
    """The commands .ci/run runs at its top level (no comments, no `if` blocks, no shell settings)."""
    commands, depth = [], 0
    for line in script.splitlines():
        line = line.strip()
        depth += line.startswith("if ") - (line == "fi")
        if line and not line.startswith("#") and depth == 0 and line != "fi":
            commands.append(shlex.split(line))
    return [c for c in commands if c[0] not in ("set", "cd", "export")]


def pip_requirement_files(command: list[str]) -> list[str] | None:
    """The -r files of a `pip install` (also as `python -m pip install`), None for any other command."""
    words = command[2:] if command[:3] == ["python", "-m", "pip"] else command
    if words[:2] != ["pip", "install"]:
        return None
    return [words[i + 1] for i, word in enumerate(words) if word == "-r"]


def test_the_readme_gives_the_two_set_up_commands_first():
    readme = README.read_text()
    assert re.findall(r"^## (.+)$", readme, re.M)[0] == "Set-up (two commands)"  # only a picture and a paragraph before
    assert setup_commands(readme) == [
        [["pip", "install", "-r", "requirements.txt"], ["python", "app.py"]],
        [["pip", "install", "-r", "requirements-dev.txt"], ["python", "-m", "pytest", "-q"]],
    ]


def test_the_readme_test_command_is_what_ci_runs():
    (install, test), ci = setup_commands(README.read_text())[1], ci_commands(CI.read_text())
    ci_installs = [files for files in map(pip_requirement_files, ci) if files is not None]
    assert ci_installs == [pip_requirement_files(install)], "CI installs other requirements than the README says"
    assert [c for c in ci if c[:3] == ["python", "-m", "pytest"]] == [test], "CI runs another test command"


@pytest.mark.parametrize(
    "script, message",
    [
        ("python -m pip install -r requirements.txt\npython -m pytest -q\n", "other requirements"),
        ("python -m pip install -q -r requirements-dev.txt\npython -m pytest -q -x\n", "another test command"),
    ],
)
def test_a_ci_script_that_differs_from_the_readme_is_caught(script, message, monkeypatch, tmp_path):
    fake_ci = tmp_path / "run"
    fake_ci.write_text("#!/usr/bin/env bash\nset -e\n" + script)
    monkeypatch.setattr(f"{__name__}.CI", fake_ci)
    with pytest.raises(AssertionError, match=message):
        test_the_readme_test_command_is_what_ci_runs()


@pytest.mark.parametrize("page", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_relative_link_and_picture_exists(page: Path):
    targets = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert local, f"{page.name} links to nothing"
    missing = [t for t in local if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"
