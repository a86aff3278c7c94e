"""Import layering: serving never loads training, evaluation or gradio; training never loads gradio; nor does the
CLI. Each check imports one module in a fresh interpreter and lists what that loaded."""

import json
import subprocess
import sys

from conftest import ROOT


def loaded_by(module: str, *prefixes: str) -> list[str]:
    """The modules whose names start with one of `prefixes` in sys.modules of a fresh `python -c "import module"`."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.splitlines()[-1])
    assert module in loaded  # the check sees what it imported
    return [m for m in loaded if m.startswith(prefixes)]


def test_inference_loads_neither_training_evaluation_nor_gradio():
    assert loaded_by("stargan_app.inference", "stargan_app.training", "stargan_app.evaluation", "gradio") == []


def test_training_loop_does_not_load_gradio():
    assert loaded_by("stargan_app.training.stargan_loop", "gradio") == []


def test_cli_loads_neither_torch_nor_gradio():
    # `app.py --help` and flag parsing need only the config dataclasses; each subcommand imports what it runs
    assert loaded_by("stargan_app.cli", "torch", "gradio") == []


def test_package_exports_the_inference_api_on_first_use():
    assert loaded_by("stargan_app", "torch", "gradio") == []
    code = (
        "import sys, stargan_app; stargan_app.FaceEditor; from stargan_app import ClassSampler; "
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["True"], proc.stderr[-2000:]
