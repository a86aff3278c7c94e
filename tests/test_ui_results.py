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


def test_every_endpoint_documents_every_parameter():
    """Gradio reads `Args:` into the MCP tool schema and the summary into the API page."""
    import gradio.utils

    api = pytest.importorskip("stargan_app.ui.api")
    for fn in (api.detect, api.edit, api.preview_grid, api.sample, api.sample_grid):
        summary, params, _ = gradio.utils.get_function_description(fn)
        assert summary and params and all(params.values()), (fn.__name__, params)


def test_mcp_follows_the_extra_and_the_environment(monkeypatch):
    import importlib.util

    blocks = pytest.importorskip("stargan_app.ui.blocks")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "mcp" else None)
    monkeypatch.delenv(blocks.MCP_ENV, raising=False)
    assert blocks.mcp_enabled()
    monkeypatch.setenv(blocks.MCP_ENV, "false")
    assert not blocks.mcp_enabled()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.delenv(blocks.MCP_ENV)
    assert not blocks.mcp_enabled()
