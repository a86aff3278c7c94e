"""FaceEditor: detect -> align to CelebA geometry -> StarGAN edit (batched) -> paste back into the photo."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from stargan_app.checkpoint import LoadedWeights, load_weights, resolve_weights
from stargan_app.config import LabelSchema, StarGANConfig
from stargan_app.errors import NoFaceError
from stargan_app.face.align import AlignedFace, align_face, paste_back
from stargan_app.face.detect import DetectedFace, FaceDetector
from stargan_app.imaging import ImageSource, load_image, make_grid, pil_to_tensor, tensor_to_pil
from stargan_app.labels import edit_passes, single_attribute_edits
from stargan_app.models import Discriminator, Generator


@dataclass
class PreparedFace:
    """Everything an edit needs that does not depend on the chosen attributes (cache it per image)."""

    image: Image.Image  # the full RGB photo
    face: DetectedFace  # the face being edited
    aligned: AlignedFace  # crop + transform into it
    tensor: torch.Tensor  # crop as (1, 3, S, S) in [-1, 1]
    attributes: dict[str, float] | None  # D's estimate of the current attributes, if D was shipped


@dataclass
class EditResult:
    image: Image.Image  # the full photo with the edited face pasted back (same size as the input)
    face_before: Image.Image  # aligned crop before the edit
    face_after: Image.Image  # aligned crop after the edit
    attributes_before: dict[str, float] | None  # {attribute: probability} or None without D
    face: DetectedFace  # which face was edited


class FaceEditor:
    def __init__(self, generator: Generator, discriminator: Discriminator | None = None,
                 detector: FaceDetector | None = None, info: dict[str, Any] | None = None):
        self.G = generator.eval()
        self.D = discriminator.eval() if discriminator is not None else None
        self.config: StarGANConfig = generator.cfg
        self.detector = detector or FaceDetector()
        self.info = info or {}
        self._faces: OrderedDict[str, list[DetectedFace]] = OrderedDict()  # detection cache by image digest
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str = "cpu") -> FaceEditor:
        """Load a weights file (None: the shipped weights/stargan_celeba.safetensors)."""
        loaded: LoadedWeights = load_weights(resolve_weights(path, "stargan"), kind="stargan", device=device)
        return cls(loaded.modules["G"], loaded.modules.get("D"), info={**loaded.info, "path": str(loaded.path)})

    @property
    def schema(self) -> LabelSchema:
        return self.config.labels

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.schema.attributes

    def detect(self, image: ImageSource) -> list[DetectedFace]:
        """Faces above the size and confidence thresholds, largest first (cached per image content)."""
        img = load_image(image)
        key = hashlib.blake2b(img.tobytes(), digest_size=16).hexdigest() + str(img.size)
        with self._lock:
            if key in self._faces:
                self._faces.move_to_end(key)
                return self._faces[key]
        faces = self.detector.detect(img)
        with self._lock:
            self._faces[key] = faces
            while len(self._faces) > 8:
                self._faces.popitem(last=False)
        return faces

    def prepare(self, image: ImageSource, face_index: int = 0) -> PreparedFace:
        img = load_image(image)
        faces = self.detect(img)
        if not faces:
            raise NoFaceError("No face was found in this image. Try a photo where the face is clearly visible "
                              "and at least about 40 pixels wide.")
        if not 0 <= face_index < len(faces):
            raise NoFaceError(f"Face {face_index} was asked for, but the image has {len(faces)} face(s).")
        aligned = align_face(img, faces[face_index].landmarks, self.config.image_size)
        tensor = pil_to_tensor(aligned.crop)[None]
        return PreparedFace(img, faces[face_index], aligned, tensor, self.estimate_attributes(tensor))

    @torch.inference_mode()
    def estimate_attributes(self, crop: torch.Tensor) -> dict[str, float] | None:
        """Per-attribute probabilities from D's classification head, or None when D was not shipped."""
        if self.D is None:
            return None
        _, logits = self.D(crop.to(self._device))
        return {a: round(float(p), 4) for a, p in zip(self.attributes, torch.sigmoid(logits[0]))}

    def edit(self, image: ImageSource | PreparedFace, targets: Mapping[str, bool], strength: float = 1.0,
             face_index: int = 0, source: Mapping[str, float] | None = None) -> EditResult:
        """Edit one face: targets {attribute: on/off}; untouched attributes keep their source value."""
        prep = image if isinstance(image, PreparedFace) else self.prepare(image, face_index)
        source = source if source is not None else prep.attributes
        passes = edit_passes(self.schema, targets, source, strength)
        x = prep.tensor
        with torch.inference_mode():
            for c in passes:  # one pass per label group touched, each with its own mask
                x = self.G(x.to(self._device), c[None].to(self._device)).cpu()
        after = tensor_to_pil(x[0]) if passes else prep.aligned.crop
        full = paste_back(prep.image, after, prep.aligned.matrix) if passes else prep.image.copy()
        return EditResult(full, prep.aligned.crop, after, prep.attributes, prep.face)

    def preview_grid(self, image: ImageSource | PreparedFace, face_index: int = 0) -> Image.Image:
        """The aligned face followed by every single-attribute edit, from one batched forward."""
        prep = image if isinstance(image, PreparedFace) else self.prepare(image, face_index)
        edits = single_attribute_edits(self.schema, prep.attributes)
        cs = torch.stack([c for _, c in edits]).to(self._device)
        with torch.inference_mode():
            out = self.G(prep.tensor.to(self._device).expand(len(cs), -1, -1, -1), cs).cpu()
        return make_grid([prep.aligned.crop] + [tensor_to_pil(o) for o in out], ncols=len(cs) + 1)

    def preview_labels(self, attributes: Mapping[str, float] | None = None) -> list[str]:
        return ["input"] + [name for name, _ in single_attribute_edits(self.schema, attributes)]

    @property
    def _device(self) -> torch.device:
        return next(self.G.parameters()).device
