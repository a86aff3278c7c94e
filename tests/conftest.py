"""Shared pytest configuration, fixtures and builders; test files import the helpers with `from conftest import ...`."""

import gzip
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan_app.checkpoint import save_weights
from stargan_app.config import GROUP_A, GROUP_B, GuideConfig, StarGANConfig
from stargan_app.face.align import celeba_reference_points
from stargan_app.face.detect import DetectedFace
from stargan_app.models import AttributeGuide, Discriminator, Generator

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"
SHARED_CELEBA = ROOT.parent / "shared" / "data" / "celeba-10k"  # the shared data's CelebA subset (absent elsewhere)

# The tiny StarGAN every fast test builds: 32 px, 8 channels, one residual block (a few ms per forward on a CPU).
TINY_STARGAN = StarGANConfig(image_size=32, conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=4)
TINY_DIMS = (
    "image_size",
    "conv_dim",
    "g_repeat_num",
    "d_conv_dim",
    "d_repeat_num",
)  # its fields a training config shares
CELEBA_COLUMNS = (
    *GROUP_A,
    *GROUP_B,
    "Male",
)  # the columns of the synthetic list_attr_celeba.txt (Male: one no model reads)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "shared_data: needs the data sets under ../shared/data (skipped when absent)",
    )


def needs_weights(*files: str) -> pytest.MarkDecorator:
    """Skips a test (or, as pytestmark, a module) when one of the shipped files weights/<files> is missing."""
    missing = [f for f in files if not (WEIGHTS / f).exists()]
    return pytest.mark.skipif(bool(missing), reason=f"no shipped {', '.join(missing)}")


# ---------------------------------------------------------------- tiny models and synthetic data


def tiny_stargan(cfg: StarGANConfig = TINY_STARGAN, seed: int = 0) -> tuple[Generator, Discriminator]:
    """A random-weight G and D of `cfg`, the same for the same seed."""
    torch.manual_seed(seed)
    return Generator(cfg), Discriminator(cfg)


def tiny_stargan_weights(path: Path, cfg: StarGANConfig = TINY_STARGAN, seed: int = 0) -> Path:
    """A weights file of tiny_stargan(cfg, seed)."""
    G, D = tiny_stargan(cfg, seed)
    return save_weights(path, "stargan", cfg, {"G": G, "D": D})


TINY_GUIDE = GuideConfig(image_size=32, width=4)  # the attribute guide at the tiny StarGAN's size


def tiny_guide(seed: int = 0) -> AttributeGuide:
    """A random-weight guide of TINY_GUIDE, the same for the same seed, with BatchNorm statistics away from their
    initial values (so a guide left in train mode would visibly change them)."""
    torch.manual_seed(seed)
    guide = AttributeGuide(TINY_GUIDE)
    with torch.no_grad():
        guide.train()(torch.rand(8, 3, 32, 32) * 2 - 1)
    return guide.eval()


def tiny_guide_weights(path: Path, seed: int = 0) -> Path:
    """A guide-kind weights file of tiny_guide(seed)."""
    return save_weights(path, "guide", TINY_GUIDE, {"guide": tiny_guide(seed)}, info={"seed": seed})


def make_celeba(root: Path, n: int = 24, corrupt: int = 0, p_on: float = 0.3) -> Path:
    """A CelebA layout under root: n random-noise 89x109 JPEGs (the first `corrupt` of them not JPEGs at all) and a
    list_attr_celeba.txt in which each of CELEBA_COLUMNS is on with probability p_on. Seeded: the same every time."""
    (root / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        if i <= corrupt:
            (root / "img_align_celeba" / name).write_bytes(b"not a jpeg")
        else:
            Image.fromarray(rng.integers(0, 255, (109, 89, 3), dtype=np.uint8)).save(root / "img_align_celeba" / name)
        values = rng.choice([-1, 1], size=len(CELEBA_COLUMNS), p=[1 - p_on, p_on])
        rows.append(name + " " + " ".join(f"{v:2d}" for v in values))
    (root / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(CELEBA_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    return root


def tiny_celeba(tmp_path: Path) -> str:
    """The CelebA layout of a test's tmp_path (make_celeba with 2 corrupt files), made on first use."""
    celeba = tmp_path / "celeba"
    return str(celeba if celeba.exists() else make_celeba(celeba, corrupt=2))


def write_idx(path: Path, array: np.ndarray) -> None:
    """A gzipped unsigned-byte idx file, as MNIST ships them."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


# ---------------------------------------------------------------- faces without MTCNN


def celeba_landmarks(size: float) -> np.ndarray:
    """5 MTCNN-style landmarks (eyes, nose, mouth corners) where CelebA geometry puts them in a size x size square."""
    left_eye, right_eye, mouth = celeba_reference_points(size)
    k = size / 128
    return np.array([left_eye, right_eye, np.array([63.6, 80.0]) * k, mouth - [12.0 * k, 0.0], mouth + [12.0 * k, 0.0]])


class FakeDetector:
    """Stands in for FaceDetector: `count` faces in CelebA geometry, each filling a `size` px square whose corner is at
    `origin`, the k-th moved right by k * `step` px (all the same size, so any order is largest first)."""

    def __init__(self, count: int = 1, size: float = 256, origin: tuple[float, float] = (100, 100), step: float = 200):
        self.count, self.size, self.origin, self.step = count, size, origin, step

    def detect(self, img) -> list[DetectedFace]:
        faces = []
        for k in range(self.count):
            x, y = self.origin[0] + k * self.step, self.origin[1]
            faces.append(DetectedFace((x, y, x + self.size, y + self.size), celeba_landmarks(self.size) + [x, y], 0.99))
        return faces


# ---------------------------------------------------------------- the running app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    """`python app.py` on a free loopback port, as a subprocess."""

    def __init__(self, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        full_env = {**os.environ, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_ANALYTICS_ENABLED": "False", **env}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail(self.proc.stdout.read())
                time.sleep(0.5)
        self.stop()
        pytest.fail("the app did not start listening within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def running_app():
    """The app (shipped weights) with its default settings, shared by the HTTP tests."""
    app = RunningApp()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="session")
def app_url(running_app) -> str:
    return running_app.url


@pytest.fixture(scope="session")
def astronaut(tmp_path_factory) -> Path:
    skimage_data = pytest.importorskip("skimage.data")

    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path
