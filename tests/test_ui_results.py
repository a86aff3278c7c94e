"""How the app hands edited photos to Gradio: PNG when small, JPEG when large, a bounded folder."""

import numpy as np
import pytest
from PIL import Image

shared = pytest.importorskip("stargan_app.ui.shared")


def test_result_files_png_small_jpeg_large_and_pruned(tmp_path, monkeypatch):
    monkeypatch.setattr(shared, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(shared, "KEEP_RESULT_FILES", 3)
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (100, 120, 3), dtype=np.uint8))
    path = shared.result_file(small)
    with Image.open(path) as im:
        assert im.format == "PNG" and np.array_equal(np.asarray(im), np.asarray(small))  # lossless
    big = Image.new("RGB", (1500, 1000), (10, 200, 30))
    with Image.open(shared.result_file(big)) as im:
        assert im.format == "JPEG" and im.size == (1500, 1000)
    for i in range(5):
        shared.result_file(Image.new("RGB", (8, 8), (i, 0, 0)))
    assert len(list(tmp_path.glob("edited-*"))) == 3
    for i in range(4):  # another prefix keeps its own count and leaves the edited photos alone
        shared.result_file(Image.new("RGB", (8, 8), (0, i, 0)), "sample", keep=2)
    assert len(list(tmp_path.glob("sample-*"))) == 2 and len(list(tmp_path.glob("edited-*"))) == 3
