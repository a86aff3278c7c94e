"""Bounded load on a running app (loopback only): concurrent edits and samples, the queue bound, memory growth."""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import RunningApp, needs_weights

from stargan_app.config import HAIR_COLOURS

pytest.importorskip("gradio_client")
psutil = pytest.importorskip("psutil")
pytestmark = [pytest.mark.shipped_weights, needs_weights("stargan_celeba.safetensors", "cgan_mnist.safetensors")]


def timed_calls(client, calls: list[tuple[tuple, str]], workers: int) -> list[tuple[float, object]]:
    """Run (args, api_name) calls at once; each gives (seconds, result or the exception it raised)."""

    def one(call):
        args, api = call
        start = time.perf_counter()
        try:
            out = client.predict(*args, api_name=api)
        except Exception as e:  # collected and asserted on by the caller
            out = e
        return time.perf_counter() - start, out

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, calls))


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def test_32_edits_and_32_samples_at_once_all_complete(running_app, astronaut):
    from gradio_client import Client, handle_file

    client = Client(running_app.url, verbose=False, max_workers=64)
    calls = [((handle_file(str(astronaut)), HAIR_COLOURS[i % 4], None, 1.0, 0), "/edit") for i in range(32)]
    calls += [
        (("mnist" if i % 2 else "fashion", str(i % 10) if i % 2 else "Sneaker", 16, i), "/sample") for i in range(32)
    ]
    results = timed_calls(client, calls, workers=64)
    errors = [out for _, out in results if isinstance(out, Exception)]
    assert not errors, errors[:3]
    for name, part in (("edit", results[:32]), ("sample", results[32:])):
        seconds = [s for s, _ in part]
        print(
            f"{name}: p50 {statistics.median(seconds):.2f} s, p95 {percentile(seconds, 0.95):.2f} s under 64 concurrent"
        )
    assert all(len(out) == 16 for _, out in results[32:])


def test_a_full_queue_answers_busy_at_once_and_recovers(astronaut):
    from gradio_client import Client, handle_file

    app = RunningApp(STARGAN_APP_QUEUE_SIZE="2")
    try:
        client = Client(app.url, verbose=False, max_workers=24)
        calls = [((handle_file(str(astronaut)), HAIR_COLOURS[i % 4], None, 1.0, 0), "/edit") for i in range(24)]
        results = timed_calls(client, calls, workers=24)
        busy = [s for s, out in results if isinstance(out, Exception) and "Queue is full" in str(out)]
        other_errors = [out for _, out in results if isinstance(out, Exception) and "Queue is full" not in str(out)]
        assert busy and not other_errors, other_errors[:3]
        assert max(busy) < 30  # refused up front, not after waiting for the others
        assert len(client.predict(handle_file(str(astronaut)), api_name="/detect")) == 1  # and it recovers
    finally:
        app.stop()


def test_memory_settles_over_200_sequential_edits(running_app, astronaut):
    from gradio_client import Client, handle_file

    client = Client(running_app.url, verbose=False)
    proc = psutil.Process(running_app.proc.pid)

    def edits(n: int) -> None:
        for i in range(n):
            client.predict(
                handle_file(str(astronaut)), HAIR_COLOURS[i % 4], None, 0.5 + (i % 3) / 2, 0, api_name="/edit"
            )

    edits(20)  # warm-up: models loaded, allocator pools and caches filled
    before = proc.memory_info().rss
    edits(200)
    growth_mb = (proc.memory_info().rss - before) / 2**20
    print(f"RSS {before / 2**20:.0f} MB -> growth {growth_mb:.1f} MB over 200 edits")
    assert growth_mb < 100
