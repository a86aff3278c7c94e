"""Where a weights file comes from, across runs and sessions: its training stages and their cumulative totals.

A campaign trains one model over many sessions and machines. Every exported file carries `stages` (one per run:
recipe, options, steps, G updates, seconds) and the totals over them, so a file seeded from another, or continued
from a committed training state, still says how much training is in it.
"""

from __future__ import annotations

from typing import Any

from stargan_app.training.options import PAPER_N_CRITIC

STAGE_KEYS = (
    "recipe",
    "augment",
    "edit_regions",  # removed: earlier runs' D saw fakes gated to the attribute regions; kept in their stages
    "targets",  # removed: earlier runs' target draw ("shuffle", or "balanced"); kept in their stages
    "d_warmup",
    "output",  # "image" or "residual" (or the removed "masked", in earlier stages)
    "upsample",
    "loss_weights",
    "guide",  # the frozen attribute guide G's attribute term read: its file and sha256
    "n_critic",
    "batch_size",
    "hardware",
    "precision",
    "processes",  # data-parallel processes (torchrun), one batch shard each
    "threads",  # intra-op threads per process
    "data",  # the data set by name (earlier stages: none, or a path on the machine that trained them)
)


def stages_of(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The stages of a weights file's training, from its info; a file from before stages were recorded is one stage
    of its `steps` with the paper's recipe (the only one those files were trained with; every file that names its
    recipe also records its n_critic)."""
    if "stages" in info:
        return list(info["stages"])
    if "steps" not in info:
        return []
    recipe = info.get("recipe", "wgan-gp")
    n_critic = int(info.get("n_critic") or PAPER_N_CRITIC)
    steps = int(info["steps"])
    return [
        {
            "recipe": recipe,
            "n_critic": n_critic,
            "steps": [0, steps],
            "g_updates": steps // n_critic,
            "train_seconds": float(info.get("train_seconds", 0.0)),
        }
    ]


def run_stage(info: dict[str, Any], step: int, train_seconds: float) -> dict[str, Any]:
    """This run's own stage: its options from the run's info, steps from where it began (0, or the step a
    continued campaign picked up at) to `step`."""
    start = int(info.get("init_campaign_step", 0))
    seconds = train_seconds - float(info.get("init_campaign_seconds", 0.0))
    n_critic = int(info.get("n_critic") or PAPER_N_CRITIC)
    stage = {k: info[k] for k in STAGE_KEYS if k in info}
    g_steps = max(0, step - max(start, int(info.get("d_warmup", 0))))  # D-only warm-up steps update no G
    stage.update(n_critic=n_critic, steps=[start, step], g_updates=g_steps // n_critic)
    stage["train_seconds"] = round(max(0.0, seconds), 1)
    if info.get("init_weights") and start == 0:
        stage["seeded_from"] = info["init_weights"]
    return stage


def earlier_stages(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The stages before a run's own: those of the file it was seeded or continued from."""
    if "init_stages" in info:
        return list(info["init_stages"])
    if "init_steps" in info:  # a run seeded before stages were recorded
        return stages_of({"steps": info["init_steps"], "train_seconds": info.get("init_train_seconds", 0.0)})
    return []


def lineage(info: dict[str, Any], step: int, train_seconds: float) -> dict[str, Any]:
    """`stages` (the earlier ones, then this run's) and their totals, for an exported file's info."""
    stages = earlier_stages(info) + [run_stage(info, step, train_seconds)]
    return {"stages": stages, **totals(stages)}


def totals(stages: list[dict[str, Any]]) -> dict[str, Any]:
    """The cumulative figures over all stages."""
    return {
        "total_g_updates": sum(int(s.get("g_updates", 0)) for s in stages),
        "total_train_seconds": round(sum(float(s.get("train_seconds", 0.0)) for s in stages), 1),
    }
