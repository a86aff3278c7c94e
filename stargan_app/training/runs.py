"""What every training loop shares: devices and DDP, run dirs, logging, resume checkpoints, the step driver."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from stargan_app.checkpoint import load_resume, save_resume


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or inf; training stops and the last good checkpoint is kept."""


@dataclass
class Dist:
    rank: int  # global rank of this process (0 when not distributed)
    world: int  # number of processes
    device: torch.device  # where this process trains

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Dist:
    """Pick the device; under torchrun (WORLD_SIZE > 1) join the process group (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if world > 1:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank() if world > 1 else 0, world=world, device=dev)


def cpu_has_native_bf16() -> bool:
    """True on CPUs whose oneDNN kernels run bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Autocast:
    """A reusable bf16 autocast context for one device; `enabled` says whether it does anything."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device_type, self.enabled = device.type, enabled

    def __enter__(self) -> None:
        self._ctx = torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.enabled)
        self._ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def autocast_for(device: torch.device, amp: bool) -> Autocast:
    """bf16 autocast on CUDA and on CPUs with native bf16 when amp is on; a no-op context otherwise."""
    native = device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
    return Autocast(device, amp and native)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def hardware(d: Dist) -> str:
    if d.device.type == "cuda":
        return f"{d.world}x {torch.cuda.get_device_name(d.device)}"
    return f"{d.world}x CPU ({os.cpu_count()} cores, {platform.machine()})"


def write_run_config(run_dir: Path, cfg: Any) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True))


def linear_decay(base_lr: float, step: int, total: int) -> float:
    """Constant for the first half of training, then linear to zero."""
    half = total / 2
    return base_lr if step < half else base_lr * max(0.0, (total - step) / half)


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """All randomness of one step comes from here, so resuming at any step reproduces the same run."""
    return torch.Generator().manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2**63))


@dataclass
class Driver:
    """Runs step_fn over a range of steps with periodic logging, sampling and atomic resume checkpoints."""

    run_dir: Path
    dist: Dist
    num_steps: int
    log_every: int
    save_every: int
    sample_every: int
    keep_checkpoints: int
    state_fn: Callable[[int], dict[str, Any]]  # step -> full training state
    sample_fn: Callable[[int], None] | None = None
    desc: str = "train"

    def resume(self, restore_fn: Callable[[dict[str, Any]], None]) -> int:
        state = load_resume(self.run_dir)
        if state is None:
            return 0
        restore_fn(state)
        if self.dist.is_main:
            print(f"resumed {self.run_dir} at step {state['step']}")
        return int(state["step"])

    def run(self, start: int, step_fn: Callable[[int], dict[str, torch.Tensor]]) -> None:
        """Steps start..num_steps-1; Ctrl-C or SIGTERM (a scheduler stopping the job) saves, then re-raises."""
        if threading.current_thread() is not threading.main_thread():
            return self._run(start, step_fn)
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self._run(start, step_fn)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _run(self, start: int, step_fn: Callable[[int], dict[str, torch.Tensor]]) -> None:
        writer, bar = self._open_logs(start)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}  # G losses arrive only every n_critic steps
        done, tick = start, time.perf_counter()
        try:
            for step in range(start, self.num_steps):
                for name, value in step_fn(step).items():
                    sums[name] = sums.get(name, 0) + value.detach()
                    counts[name] = counts.get(name, 0) + 1
                done = step + 1
                if bar is not None:
                    bar.update(1)
                if done % self.log_every == 0 or done == self.num_steps or done % self.save_every == 0:
                    means = {k: float(v) / counts[k] for k, v in sums.items()}  # the only host sync
                    sums, counts = {}, {}
                    self._check_finite(means, done)
                    if writer is not None:
                        for k, v in means.items():
                            writer.add_scalar(f"loss/{k}", v, done)
                        writer.add_scalar("speed/steps_per_s", self.log_every / max(1e-9, time.perf_counter() - tick), done)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:4]})
                    tick = time.perf_counter()
                if done % self.save_every == 0 or done == self.num_steps:
                    self.save(done)
                if self.sample_fn is not None and self.sample_every and done % self.sample_every == 0 and self.dist.is_main:
                    self.sample_fn(done)
        except KeyboardInterrupt:
            means = {k: float(v) / counts[k] for k, v in sums.items()}
            if done > start and all(math.isfinite(v) for v in means.values()):
                self.save(done)
                if self.dist.is_main:
                    print(f"\ninterrupted: saved step {done}; continue with --resume {self.run_dir}")
            raise
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()

    def save(self, step: int) -> None:
        if self.dist.is_main:
            save_resume(self.run_dir, step, self.state_fn(step), keep=self.keep_checkpoints)

    def _check_finite(self, means: dict[str, float], step: int) -> None:
        bad = {k: v for k, v in means.items() if not math.isfinite(v)}
        if bad:
            raise NonFiniteLossError(
                f"loss became non-finite near step {step} ({bad}); stopped without saving. "
                f"The last good checkpoint in {self.run_dir / 'checkpoints'} is kept: resume from it with a lower "
                "learning rate, or inspect the data."
            )

    def _open_logs(self, start: int):
        if not self.dist.is_main:
            return None, None
        from tqdm import tqdm

        writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.run_dir / "tb"))
        except ImportError:  # TensorBoard is optional
            print("tensorboard not installed: scalars are not logged")
        bar = tqdm(total=self.num_steps, initial=start, desc=self.desc, dynamic_ncols=True, mininterval=2.0)
        return writer, bar


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameters and float buffers (BatchNorm statistics) alike.

    The decay warms up as (1 + step) / (10 + step), so early averages are not dominated by the random init.
    """
    decay = min(decay, (1 + step) / (10 + step))
    for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.is_floating_point():
            e.lerp_(m, 1.0 - decay)
        else:
            e.copy_(m)


def training_state(kind: str, step: int, G: torch.nn.Module, D: torch.nn.Module, opt_g: torch.optim.Optimizer,
                   opt_d: torch.optim.Optimizer, model_config: Any, train_seconds: float,
                   info: dict[str, Any], G_ema: torch.nn.Module | None = None) -> dict[str, Any]:
    """Everything a GAN run needs to resume exactly (tensors and plain types only: loads with weights_only).

    With G_ema, the averaged generator is saved too, and it is what export_run ships as G.
    """
    extra = {"G_ema": G_ema.state_dict()} if G_ema is not None else {}
    return {
        **extra,
        "kind": kind,
        "step": step,
        "G": G.state_dict(),
        "D": D.state_dict(),
        "opt_G": opt_g.state_dict(),
        "opt_D": opt_d.state_dict(),
        "rng": rng_state(),
        "model_config": dataclasses.asdict(model_config),
        "train_seconds": train_seconds,
        "info": info,
    }


def restore_training_state(state: dict[str, Any], G: torch.nn.Module, D: torch.nn.Module,
                           opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                           G_ema: torch.nn.Module | None = None) -> float:
    """Load a training_state() back; returns the training seconds already spent."""
    G.load_state_dict(state["G"])
    if G_ema is not None:
        G_ema.load_state_dict(state.get("G_ema", state["G"]))
    D.load_state_dict(state["D"])
    opt_g.load_state_dict(state["opt_G"])
    opt_d.load_state_dict(state["opt_D"])
    set_rng_state(state["rng"])
    return float(state.get("train_seconds", 0.0))
