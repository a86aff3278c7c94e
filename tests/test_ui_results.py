"""How the app hands edited photos to Gradio: PNG when small, JPEG when large, a bounded folder."""

import numpy as np
import pytest
from PIL import Image

blocks = pytest.importorskip("stargan_app.ui.blocks")


def test_result_files_png_small_jpeg_large_and_pruned(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(blocks, "KEEP_RESULT_FILES", 3)
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (100, 120, 3), dtype=np.uint8))
    path = blocks._result_file(small)
    with Image.open(path) as im:
        assert im.format == "PNG" and np.array_equal(np.asarray(im), np.asarray(small))  # lossless
    big = Image.new("RGB", (1500, 1000), (10, 200, 30))
    with Image.open(blocks._result_file(big)) as im:
        assert im.format == "JPEG" and im.size == (1500, 1000)
    for i in range(5):
        blocks._result_file(Image.new("RGB", (8, 8), (i, 0, 0)))
    assert len(list(tmp_path.glob("edited-*"))) == 3
