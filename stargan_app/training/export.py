"""Export a run's newest complete checkpoint as the safetensors weights file the app serves (or, with the raw G
beside it, as a training state that another machine continues from)."""

from __future__ import annotations

import json
from pathlib import Path

from stargan_app.checkpoint import KINDS, save_weights
from stargan_app.config import config_from_json
from stargan_app.errors import WeightsError
from stargan_app.training.lineage import lineage
from stargan_app.training.resume import load_resume

TRAINING_G = "G_train"  # a training state's raw (not averaged) G, stored beside the served G


def export_run(run_dir: str | Path, out: str | Path, fp16: bool = False, training_state: bool = False) -> Path:
    """Write the newest checkpoint's G (its moving average, where the run keeps one) and D as a weights file.

    With training_state, the raw G goes in too (as TRAINING_G, which serving never loads): `train stargan
    --continue-from` picks the run up from that file on a machine without the run dir. Adam's moments are left
    out (they would double the file); a continued run restarts them.
    """
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
    unserved = {}
    if training_state:
        unserved[TRAINING_G] = builders["G"](config)
        unserved[TRAINING_G].load_state_dict(state["G"])
    info = dict(state.get("info", {}))
    train_seconds = float(state.get("train_seconds", 0.0))
    info.update(
        steps=int(state["step"]),
        train_seconds=round(train_seconds, 1),
        generator="exponential moving average" if "G_ema" in state else "last step",
    )
    if state["kind"] == "stargan":
        info.update(lineage(info, int(state["step"]), train_seconds))
        info.pop("init_stages", None)  # now the head of `stages`
    return save_weights(out, state["kind"], config, modules, info=info, fp16=fp16, unserved=unserved)
