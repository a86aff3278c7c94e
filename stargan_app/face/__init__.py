"""Face detection (BlazeFace proposals refined by MTCNN) and CelebA-style alignment."""

from stargan_app.face.align import (
    AlignedFace,
    FacePaster,
    align_face,
    celeba_reference_points,
    paste_back,
    similarity_transform,
)
from stargan_app.face.detect import DetectedFace, FaceDetector

__all__ = [
    "AlignedFace",
    "DetectedFace",
    "FacePaster",
    "FaceDetector",
    "align_face",
    "celeba_reference_points",
    "paste_back",
    "similarity_transform",
]
