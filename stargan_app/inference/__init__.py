"""Inference APIs: FaceEditor (StarGAN face edits) and ClassSampler (conditional GAN samples)."""

from stargan_app.inference.face_editor import EditResult, FaceEditor, PreparedFace
from stargan_app.inference.sampler import ClassSampler

__all__ = ["ClassSampler", "EditResult", "FaceEditor", "PreparedFace"]
