"""The app's MCP server (Gradio's, at /gradio_api/mcp/) driven by the `mcp` client over streamable HTTP, on localhost.

`mcp` comes with requirements.txt (gradio[mcp]), so these tests run wherever the app's requirements are installed.
"""

import asyncio
import base64
import io
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import ROOT, WEIGHTS, needs_weights
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from stargan_app.checkpoint import DEFAULT_FILES, read_metadata
from stargan_app.config import CGANConfig, StarGANConfig, config_from_json

pytestmark = [pytest.mark.shipped_weights, needs_weights(*DEFAULT_FILES.values())]
TOOLS = {"detect", "edit", "preview_grid", "sample", "sample_grid"}
PORTRAIT = ROOT / "assets" / "astronaut.png"  # public domain (NASA); Grace Hopper shows too little hair to recolour
ATTRIBUTE_LIKE = re.compile(r"\b[A-Z][a-z]+(?:_[A-Z][a-z]+)+\b")  # Blond_Hair, Wearing_Hat, ...


def with_session(url: str, use: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    """Open an MCP session on the app at `url` and return what `use(session)` gives."""

    async def run() -> Any:
        async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await use(session)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def tools(running_app) -> dict:
    return {tool.name: tool for tool in with_session(running_app.url, lambda s: s.list_tools()).tools}


def texts(tool) -> list[str]:
    """What an agent reads about a tool: its description and each parameter's."""
    return [tool.description or ""] + [p.get("description", "") for p in tool.inputSchema["properties"].values()]


def shipped_names() -> tuple[StarGANConfig, set[str]]:
    """The face model's config and every name the shipped weights know (attributes, CGAN datasets and classes)."""
    face = config_from_json(StarGANConfig, read_metadata(WEIGHTS / DEFAULT_FILES["stargan"])["config"])
    names = {"keep", *face.labels.attributes}
    for kind in ("mnist", "fashion"):
        cgan = config_from_json(CGANConfig, read_metadata(WEIGHTS / DEFAULT_FILES[kind])["config"])
        names |= {cgan.dataset, *cgan.classes}
    return face, names


def test_mcp_server_lists_every_named_endpoint_as_a_tool(tools):
    assert set(tools) == TOOLS, set(tools)
    assert "hair colour" in tools["edit"].inputSchema["properties"]["hair"]["description"]  # from Args:


def test_mcp_tool_descriptions_name_only_what_the_shipped_weights_know(tools):
    face, known = shipped_names()
    for name, tool in tools.items():
        for text in texts(tool):
            named = set(re.findall(r'"([^"]+)"', text)) | set(ATTRIBUTE_LIKE.findall(text))
            assert named <= known, (name, named - known)
    edit = " ".join(texts(tools["edit"]))
    assert all(f'"{a}"' in edit for a in face.labels.attributes)  # and /edit offers every one of them


def test_mcp_edit_of_a_licensed_portrait_returns_the_edited_photo(running_app):
    face, _ = shipped_names()
    hair = face.labels.exclusive[-1]
    photo = "data:image/png;base64," + base64.b64encode(PORTRAIT.read_bytes()).decode()
    result = with_session(running_app.url, lambda s: s.call_tool("edit", {"image": photo, "hair": hair}))
    assert not result.isError, result.content
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1 and images[0].mimeType == "image/png"
    with Image.open(io.BytesIO(base64.b64decode(images[0].data))) as edited, Image.open(PORTRAIT) as original:
        assert edited.size == original.size
        assert edited.convert("RGB").tobytes() != original.convert("RGB").tobytes()
