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


def test_cli_does_not_load_gradio():
    # stargan_app.cli itself needs only the training configs, but importing it runs the package's __init__, which
    # imports the inference API and with it torch: so torch is allowed here, gradio is not
    assert loaded_by("stargan_app.cli", "gradio") == []
