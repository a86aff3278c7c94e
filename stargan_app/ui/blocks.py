"""The Gradio app (stargan_app.ui is the only package that imports gradio): face editor, digits & clothing, about.

The tabs live in their own modules: face_layout/face_events (face editor), digits, api (named endpoints).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import gradio as gr
from huggingface_hub import ModelCard
from PIL import Image

from stargan_app.checkpoint import WEIGHTS_DIR
from stargan_app.errors import StarGANAppError
from stargan_app.runtime import CONCURRENCY, configure_threads, queue_size
from stargan_app.ui import api
from stargan_app.ui.digits import build_digits_tab
from stargan_app.ui.face_events import wire_face_tab
from stargan_app.ui.face_layout import CSS, build_face_tab
from stargan_app.ui.shared import editor, sampler, try_editor

# Every hour, delete the copies Gradio cached (uploads, results) that are more than two hours old.
DELETE_CACHE = (3600, 7200)
MCP_ENV = "GRADIO_MCP_SERVER"


def _about() -> str:
    parts = ["# About\n"]
    for name, load in (
        ("StarGAN", lambda: editor()),
        ("CGAN MNIST", lambda: sampler("mnist")),
        ("CGAN Fashion", lambda: sampler("fashion")),
    ):
        try:
            info = load().info
            parts.append(
                f"- **{name}**: `{Path(info.get('path', '')).name}`, {info.get('steps', '?')} steps on "
                f"{info.get('hardware', '?')}; data: {info.get('data', '?')}"
            )
        except StarGANAppError as e:
            parts.append(f"- **{name}**: not available ({e})")
    card = WEIGHTS_DIR / "README.md"
    if card.exists():
        parts.append("\n" + model_card_text(card))
    return "\n".join(parts)


def model_card_text(path: Path) -> str:
    """The model card's Markdown, without its YAML metadata."""
    return ModelCard.load(path, ignore_metadata_errors=True).text.lstrip("\n")


def build() -> gr.Blocks:
    ed, missing = try_editor()
    with gr.Blocks(title="StarGAN face editor", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown("# StarGAN face editor\nUpload a photo, pick the changes, and get your photo back edited.")
        with gr.Tab("Face editor"):
            wire_face_tab(build_face_tab(ed, missing), ed, missing)
        with gr.Tab("Digits & clothing"):
            build_digits_tab()
        with gr.Tab("About"):
            gr.Markdown(_about())
        api.register(ed)
    return demo


def mcp_available() -> bool:
    """Gradio's MCP server needs the optional `mcp` package (pip install "gradio[mcp]")."""
    return importlib.util.find_spec("mcp") is not None


def mcp_enabled() -> bool:
    """On when the `mcp` extra is importable, unless GRADIO_MCP_SERVER=false says otherwise."""
    return mcp_available() and os.environ.get(MCP_ENV, "true").strip().lower() not in ("false", "0", "no")


def _warm_up() -> None:
    """Build MTCNN and run each network once, so the first visitor does not wait for it."""
    ed, _ = try_editor()
    if ed is not None:
        ed.detector.detect(Image.new("RGB", (96, 96), (128, 128, 128)))


def launch() -> None:
    configure_threads()
    demo = build()
    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()  # overlaps the server's start-up
    demo.queue(max_size=queue_size(), default_concurrency_limit=CONCURRENCY)
    demo.launch(
        max_file_size="25mb",
        show_error=True,
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        css=CSS,
        mcp_server=mcp_enabled(),
    )
