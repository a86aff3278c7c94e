"""Serving speed on this machine: cold start, edit and re-edit latency, preview grid, CGAN sampling, peak RSS.

    python benchmarks/serve.py                     # everything, with the thread count the app uses
    python benchmarks/serve.py --threads 1 --skip-cold-start

Cold start is a real `python app.py` process: from spawn to the first /edit answered over HTTP (gradio_client).
The rest runs in this process on the shipped weights: a 12 MP photo (4000x3000, the astronaut portrait pasted
at 3000x3000) and the 512x512 astronaut itself.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from align_bench import astronaut, photo_12mp  # noqa: E402


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, p95) in milliseconds after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def cold_start(photo: Path, threads: int) -> float:
    """Seconds from spawning `python app.py` to the first /edit answered."""
    from gradio_client import Client, handle_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    if threads:
        env["STARGAN_APP_THREADS"] = str(threads)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit("the app exited during start-up")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict(handle_file(str(photo)), "Blond_Hair", None, 1.0, 0, api_name="/edit")
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: what the app picks)")
    parser.add_argument("--skip-cold-start", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(G): warm-up and forward")
    args = parser.parse_args()

    import torch

    from stargan_app.runtime import configure_threads

    threads = configure_threads(args.threads or None)
    with tempfile.TemporaryDirectory() as tmp:
        portrait = Path(tmp) / "astronaut.png"
        astronaut().save(portrait)
        if not args.skip_cold_start:
            print(f"cold start (spawn -> first /edit answered): {cold_start(portrait, args.threads):.2f} s")

        t0 = time.perf_counter()
        from stargan_app.inference import ClassSampler, FaceEditor

        editor = FaceEditor.from_pretrained()
        sampler = ClassSampler.from_pretrained("mnist")
        print(f"import + load both models in-process: {time.perf_counter() - t0:.2f} s")
        cfg = editor.config
        print(
            f"torch {torch.__version__}, {threads} thread(s), {os.cpu_count()} CPUs; StarGAN {cfg.image_size}px "
            f"conv_dim {cfg.conv_dim}, {cfg.g_repeat_num} residual blocks; repeats {args.repeats}"
        )

        big = photo_12mp()
        big_jpeg = Path(tmp) / "photo_12mp.jpg"
        big.save(big_jpeg, quality=92)
        small = astronaut()
        targets = {"Blond_Hair": True}
        rows: list[tuple[str, float, float]] = []

        def measure(name: str, fn: Callable[[], object], repeats: int = args.repeats) -> None:
            rows.append((name, *timed(fn, repeats)))

        prep_big = editor.prepare(big)
        prep_small = editor.prepare(small)
        c = torch.zeros(1, cfg.labels.c_dim)
        c[0, 2], c[0, cfg.labels.cls_dim] = 1.0, 1.0

        def g_forward() -> None:
            with torch.inference_mode():
                editor.G(prep_small.tensor, c)

        measure("G forward (1 face)", g_forward)
        if args.compile:
            compiled = torch.compile(editor.G)
            t0 = time.perf_counter()
            with torch.inference_mode():
                compiled(prep_small.tensor, c)
            print(f"torch.compile(G) first call (compilation): {time.perf_counter() - t0:.1f} s")

            def compiled_forward() -> None:
                with torch.inference_mode():
                    compiled(prep_small.tensor, c)

            measure("G forward, torch.compile'd", compiled_forward)
        measure("re-edit 512px photo (prepared face)", lambda: editor.edit(prep_small, targets))
        measure("re-edit 12 MP photo (prepared face)", lambda: editor.edit(prep_big, targets))
        measure(
            "edit 12 MP JPEG file (decode + cached detection + edit)",
            lambda: editor.edit(big_jpeg, targets),
            max(3, args.repeats // 4),
        )
        measure("detect 12 MP (uncached)", lambda: editor.detector.detect(big), max(3, args.repeats // 4))
        measure("preview grid (9 edits, one forward)", lambda: editor.preview_grid(prep_small))
        measure("CGAN 64 samples", lambda: sampler.sample("7", n=64))
        result = editor.edit(prep_big, targets).image

        def encode(fmt: str, **kw) -> None:
            result.save(io.BytesIO(), fmt, **kw)

        measure("encode 12 MP result as PNG", lambda: encode("PNG"), 3)
        measure("encode 12 MP result as JPEG q95", lambda: encode("JPEG", quality=95), 5)

        g_ms = rows[0][1]
        re_edit = next(r for r in rows if r[0].startswith("re-edit 512px"))
        width = max(len(r[0]) for r in rows)
        print(f"{'':{width}}  median ms   p95 ms")
        for name, median, p95 in rows:
            print(f"{name:{width}}  {median:9.1f}  {p95:7.1f}")
        print(f"re-edit / G forward (512px photo): {re_edit[1] / g_ms:.2f}x")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
