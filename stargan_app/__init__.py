"""stargan-app: StarGAN face editing and class-conditional sampling. Importing this never loads gradio."""

from stargan_app.errors import (
    ImageError,
    ImageTooLargeError,
    LabelError,
    NoFaceError,
    StarGANAppError,
    WeightsError,
)
from stargan_app.inference import ClassSampler, EditResult, FaceEditor

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
