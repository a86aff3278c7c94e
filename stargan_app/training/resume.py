"""Resume checkpoints of a run dir (not the weights files the app serves: those are stargan_app/checkpoint.py): a
run's whole training state, written atomically, read back with weights_only=True."""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

_RESUME_RE = re.compile(r"step_(\d+)\.pt$")


def save_resume(run_dir: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Atomically write a full training state (temp file + rename) and prune older ones."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / f"step_{step:08d}.pt"
    fd, tmp = tempfile.mkstemp(dir=ckpt_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    for old in resume_checkpoints(run_dir)[keep:]:
        old.unlink(missing_ok=True)
    return final


def resume_checkpoints(run_dir: str | Path) -> list[Path]:
    """Resume checkpoints in a run dir, newest first."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    found = [p for p in ckpt_dir.glob("step_*.pt") if _RESUME_RE.search(p.name)] if ckpt_dir.is_dir() else []
    return sorted(found, key=lambda p: int(_RESUME_RE.search(p.name).group(1)), reverse=True)


def load_resume(run_dir: str | Path) -> dict[str, Any] | None:
    """The newest resume checkpoint that loads completely; damaged ones are skipped with a warning."""
    for path in resume_checkpoints(run_dir):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or corrupt: fall back to the previous one
            print(f"warning: skipping damaged checkpoint {path.name}: {e.__class__.__name__}: {e}")
    return None


def rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@dataclass(eq=False)
class GANState:
    """What a GAN run trains, and what its resume checkpoints hold (tensors and plain types: weights_only loads)."""

    kind: str  # "stargan" or "cgan": which model family export_run rebuilds
    model_config: Any  # StarGANConfig or CGANConfig
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    G_ema: nn.Module | None = None  # moving average of G: saved too, and what export_run ships as G
    info: dict[str, Any] = field(default_factory=dict)  # provenance: data, hardware, recipe, init_* of a fine-tune
    resumed_info: dict[str, Any] = field(default_factory=dict)  # the info of the checkpoint last resumed from

    def state_dict(self, step: int, train_seconds: float) -> dict[str, Any]:
        """Everything needed to continue exactly from `step`."""
        extra = {"G_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}
        return {
            **extra,
            "kind": self.kind,
            "step": step,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_g.state_dict(),
            "opt_D": self.opt_d.state_dict(),
            "rng": rng_state(),
            "model_config": dataclasses.asdict(self.model_config),
            "train_seconds": train_seconds,
            "info": self.info,
        }

    def load_state_dict(self, state: dict[str, Any]) -> float:
        """Restore a state_dict(); keeps the init_* provenance of a fine-tune. Returns the training seconds spent."""
        self.G.load_state_dict(state["G"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state.get("G_ema", state["G"]))
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_G"])
        self.opt_d.load_state_dict(state["opt_D"])
        set_rng_state(state["rng"])
        self.resumed_info = dict(state.get("info", {}))
        self.info.update({k: v for k, v in self.resumed_info.items() if k.startswith("init_")})
        return float(state.get("train_seconds", 0.0))
