"""Where training runs: the device, torchrun processes (DDP), bf16 autocast where the hardware has it."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as torch_dist

from stargan_app.runtime import resolve_device


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
    dev = resolve_device(device)
    if dev.type == "cuda":
        if world > 1:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if world > 1 and not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank=torch_dist.get_rank() if world > 1 else 0, world=world, device=dev)


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
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def hardware(dist: Dist) -> str:
    if dist.device.type == "cuda":
        return f"{dist.world}x {torch.cuda.get_device_name(dist.device)}"
    return f"{dist.world}x CPU ({cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, {cpu_isa()})"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_isa() -> str:
    """The widest matrix instructions training can use here: what sets its speed on a CPU (see docs/training.md)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512-bf16"), ("avx512f", "AVX-512"), ("avx2", "AVX2")):
        if flag in flags:
            return name
    return "no AVX2" if flags else "ISA unknown"
