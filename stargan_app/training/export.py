"""Export a run's newest complete checkpoint as the safetensors weights file the app serves."""

from __future__ import annotations

import json
from pathlib import Path

from stargan_app.checkpoint import KINDS, save_weights
from stargan_app.config import config_from_json
from stargan_app.errors import WeightsError
from stargan_app.training.checkpoints import load_resume


def export_run(run_dir: str | Path, out: str | Path, fp16: bool = False) -> Path:
    """Write the newest checkpoint's G (its moving average, where the run keeps one) and D as a weights file."""
    state = load_resume(run_dir)
    if state is None:
        raise WeightsError(f"{run_dir} has no complete checkpoint to export.")
    config_cls, builders = KINDS[state["kind"]]
    config = config_from_json(config_cls, json.dumps(state["model_config"]))
    modules = {}
    for name, build in builders.items():
        module = build(config)
        module.load_state_dict(state["G_ema"] if name == "G" and "G_ema" in state else state[name])
        modules[name] = module
    info = dict(state.get("info", {}))
    info.update(
        steps=int(state["step"]),
        train_seconds=round(float(state.get("train_seconds", 0.0)), 1),
        generator="exponential moving average" if "G_ema" in state else "last step",
    )
    return save_weights(out, state["kind"], config, modules, info=info, fp16=fp16)
