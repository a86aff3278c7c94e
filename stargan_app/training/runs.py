"""What every training loop shares: the run dir, the step driver (logging, sampling, resume checkpoints), EMA."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stargan_app.runtime import module_device
from stargan_app.training.devices import Dist, teardown
from stargan_app.training.export import export_run
from stargan_app.training.options import CGANTrainConfig, GuideTrainConfig, StarGANTrainConfig
from stargan_app.training.resume import GANState, load_resume, save_resume


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or inf; training stops and the last good checkpoint is kept."""


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

    cfg: StarGANTrainConfig | CGANTrainConfig | GuideTrainConfig  # the run's dir, intervals and checkpoint count
    dist: Dist
    gan: GANState  # what is trained, saved and restored
    num_steps: int
    sample_fn: Callable[[int], None] | None = None  # step -> writes a sample grid (main process only)
    desc: str = "train"
    seconds_before: float = 0.0  # training seconds of the run's earlier sessions (from its checkpoint)
    started: float = field(default_factory=time.perf_counter)  # when this session's steps began

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.run_dir)

    def resume(self) -> int:
        """Restore the newest complete checkpoint of the run dir into `gan`; returns the step to continue from."""
        state = load_resume(self.run_dir)
        if state is None:
            return 0
        self.seconds_before = self.gan.load_state_dict(state)
        if self.dist.is_main:
            print(f"resumed {self.run_dir} at step {state['step']}")
        return int(state["step"])

    def train_seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def run(self, start: int, step_fn: Callable[[int], dict[str, torch.Tensor]]) -> None:
        """Steps start..num_steps-1; Ctrl-C or SIGTERM (a scheduler stopping the job) saves, then re-raises."""
        self.started = time.perf_counter()
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
        sampling = self.sample_fn is not None and self.cfg.sample_every and self.dist.is_main
        try:
            for step in range(start, self.num_steps):
                for name, value in step_fn(step).items():
                    sums[name] = sums.get(name, 0) + value.detach()
                    counts[name] = counts.get(name, 0) + 1
                done = step + 1
                if bar is not None:
                    bar.update(1)
                if done % self.cfg.log_every == 0 or done == self.num_steps or done % self.cfg.save_every == 0:
                    means = {k: float(v) / counts[k] for k, v in sums.items()}  # the only host sync
                    sums, counts = {}, {}
                    self._check_finite(means, done)
                    if writer is not None:
                        for k, v in means.items():
                            writer.add_scalar(f"loss/{k}", v, done)
                        writer.add_scalar(
                            "speed/steps_per_s", self.cfg.log_every / max(1e-9, time.perf_counter() - tick), done
                        )
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:4]})
                    tick = time.perf_counter()
                if done % self.cfg.save_every == 0 or done == self.num_steps:
                    self.save(done)
                if sampling and done % self.cfg.sample_every == 0:
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
            save_resume(
                self.run_dir, step, self.gan.state_dict(step, self.train_seconds()), keep=self.cfg.keep_checkpoints
            )

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
            _say_tensorboard_is_missing()
        bar = tqdm(total=self.num_steps, initial=start, desc=self.desc, dynamic_ncols=True, mininterval=2.0)
        return writer, bar


@functools.cache  # once per process, not once per run of `train all`
def _say_tensorboard_is_missing() -> None:
    print("TensorBoard is not installed, so runs log no scalars to RUN_DIR/tb: `pip install tensorboard` to get them.")


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int, warmup: bool = True) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameters and float buffers (BatchNorm statistics) alike.

    With warmup the decay rises as (1 + step) / (10 + step), so early averages are not dominated by the random init.
    A run started from trained weights passes warmup=False: its average starts as those weights and must stay near
    them, not follow the first steps' noisy G (a fine-tune's served G fell from 0.63 to 0.40 hair transfer in 176
    steps with the warm-up).
    """
    if warmup:
        decay = min(decay, (1 + step) / (10 + step))
    for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.is_floating_point():
            e.lerp_(m, 1.0 - decay)
        else:
            e.copy_(m)


def train_and_export(
    driver: Driver, start: int, step_fn: Callable[[int], dict[str, torch.Tensor]], out: str, fp16: bool
) -> Path:
    """The end every loop shares: run the steps, leave the process group, export the newest checkpoint to `out`."""
    try:
        driver.run(start, step_fn)
    finally:
        teardown()
    if driver.dist.is_main and out:
        print(f"wrote {export_run(driver.run_dir, out, fp16=fp16)}")
    return driver.run_dir


def new_gan_state(
    kind: str,
    model_config: Any,
    G: torch.nn.Module,
    D: torch.nn.Module,
    cfg: StarGANTrainConfig | CGANTrainConfig,
    g_lr: float,
    d_lr: float,
    info: dict[str, Any],
) -> GANState:
    """Adam for G and D with the run's betas (fused on CUDA), and a frozen copy of G for its moving average when
    cfg.ema_decay is set."""
    fused = module_device(G).type == "cuda" or None
    return GANState(
        kind,
        model_config,
        G,
        D,
        opt_g=torch.optim.Adam(G.parameters(), g_lr, (cfg.beta1, cfg.beta2), fused=fused),
        opt_d=torch.optim.Adam(D.parameters(), d_lr, (cfg.beta1, cfg.beta2), fused=fused),
        G_ema=copy.deepcopy(G).requires_grad_(False).eval() if cfg.ema_decay else None,
        info=info,
    )


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Fresh gradients of `loss`, then one step of `opt`."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """No gradients for `module`'s parameters inside the block (D while G trains through it)."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)
