"""stargan-app: StarGAN face editing and class-conditional sampling.

Importing the package is cheap (no torch, no gradio): FaceEditor, ClassSampler and EditResult load the inference
modules on first use, so `app.py --help` and the training configs start at once.
"""

from typing import Any

from stargan_app.errors import (
    ImageError,
    ImageTooLargeError,
    LabelError,
    NoFaceError,
    StarGANAppError,
    WeightsError,
)

__all__ = [
    "ClassSampler",
    "EditResult",
    "FaceEditor",
    "ImageError",
    "ImageTooLargeError",
    "LabelError",
    "NoFaceError",
    "StarGANAppError",
    "WeightsError",
]

_INFERENCE = ("ClassSampler", "EditResult", "FaceEditor")


def __getattr__(name: str) -> Any:
    if name in _INFERENCE:
        from stargan_app import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'stargan_app' has no attribute {name!r}")
