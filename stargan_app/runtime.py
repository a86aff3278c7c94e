"""Process-wide runtime settings: which device, CPU threads, how many face jobs run at once, how many may wait."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

THREADS_ENV = "STARGAN_APP_THREADS"
QUEUE_ENV = "STARGAN_APP_QUEUE_SIZE"
# One face job at a time, on every core. Two jobs that each use every core oversubscribe the CPU, and
# OpenMP's spinning threads then make both many times slower (seen here: detection 0.35 s alone, 8.5 s beside
# a busy neighbour); one job per core would halve the speed a lone user sees. Throughput is the same either
# way on a CPU-bound box, and the queue keeps everyone else's requests in order.
CONCURRENCY = 1
QUEUE_SIZE = 64  # requests that may wait; past that a client is told at once that the queue is full


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: the argument, else $STARGAN_APP_THREADS, else every CPU."""
    import torch

    n = threads or int(os.environ.get(THREADS_ENV, "0") or 0) or (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def queue_size() -> int:
    return int(os.environ.get(QUEUE_ENV, "0") or 0) or QUEUE_SIZE


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" -> the GPU when there is one, else the CPU; any other name ("cpu", "cuda:1") as given."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device a model's parameters live on (models here keep all of theirs on one)."""
    return next(module.parameters()).device
