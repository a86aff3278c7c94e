"""FaceEditor: detect -> align to CelebA geometry -> StarGAN edit (batched) -> paste back into the photo."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from stargan_app.checkpoint import LoadedWeights, load_weights, resolve_weights
from stargan_app.config import HAIR_COLOURS, LabelSchema, StarGANConfig
from stargan_app.errors import NoFaceError
from stargan_app.face.align import AlignedFace, FacePaster, align_face, view_matrix
from stargan_app.face.detect import DetectedFace, FaceDetector
from stargan_app.face.segment import FaceMasks, FaceSegmenter, load_mask_model
from stargan_app.imaging import ImageSource, load_image, make_grid, pil_to_tensor, tensor_to_pil
from stargan_app.inference.compositing import (
    CHANGE_SMOOTHING,
    CHANGE_WINDOW,
    Compositor,
    FaceCanvas,
    HairMatte,
    RegionMaps,
    changed_attributes,
    find_regions,
    wears_a_hat,
)
from stargan_app.inference.hair_colour import HairColourModel, find_hair_colours
from stargan_app.inference.keep_list import KeepList, find_keep_list
from stargan_app.labels import (
    display_name,
    edit_passes,
    single_attribute_edits,
    source_label_vector,
)
from stargan_app.models import Discriminator, Generator
from stargan_app.runtime import module_device

log = logging.getLogger(__name__)

__all__ = [
    "CHANGE_SMOOTHING",
    "CHANGE_WINDOW",
    "EditPreview",
    "EditResult",
    "FaceEditor",
    "PreparedFace",
    "face_square",
]


@dataclass
class PreparedFace:
    """Everything an edit needs that does not depend on the chosen attributes (cache it per image)."""

    image: Image.Image  # the full RGB photo
    face: DetectedFace  # the face being edited
    aligned: AlignedFace  # crop + transform into it
    tensor: torch.Tensor  # crop as (1, 3, S, S) in [-1, 1]
    attributes: dict[str, float] | None  # D's estimate of the current attributes, if D was shipped
    canvas: FaceCanvas  # the photo and the face's place in it, for the paste-back
    masks: FaceMasks | None = None  # this face's person and skin, which gate hair edits (None: region maps alone)
    hair: HairMatte | None = None  # this face's hair on the photo and its pixel reading (None: no colour model)
    no_edit_outputs: dict[tuple[float, ...], torch.Tensor] = field(
        default_factory=dict, repr=False
    )  # G(x, c_src) by c_src

    @property
    def paster(self) -> FacePaster:
        """The feathered crop paster of this face (what PreparedFace held before the canvas)."""
        return self.canvas.paster


@dataclass
class EditPreview:
    """One tile of the edit gallery: a single-attribute edit of one face."""

    attribute: str  # attribute key, e.g. "Blond_Hair"
    caption: str  # what a person reads, e.g. "Blond hair" or "No glasses"
    targets: dict[str, bool]  # what to pass to FaceEditor.edit to apply this edit
    image: Image.Image  # padded square around the face, cut from the edited photo


@dataclass
class EditResult:
    image: Image.Image  # the full photo with the edited face pasted back (same size as the input)
    face_before: Image.Image  # aligned crop before the edit
    face_after: Image.Image  # aligned crop after the edit
    attributes_before: dict[str, float] | None  # {attribute: probability} or None without D
    face: DetectedFace  # which face was edited
    message: str | None = None  # what a person should be told about the edit (no hair shows, already that colour)


NO_FACE_MESSAGE = (
    "No face was found in this image. Try a photo where the face is clearly visible and at least about 40 pixels wide."
)
FACE_PADDING = 0.5  # face squares (thumbnails, previews) extend this fraction of the face box on every side


def face_square(box: tuple[float, float, float, float], photo_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A square around a face box, padded by FACE_PADDING and shifted (then shrunk) to lie inside the photo."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * FACE_PADDING)
    side = int(round(min(side, *photo_size)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), photo_size[0] - side)))
    top = int(round(min(max(cy - side / 2, 0), photo_size[1] - side)))
    return left, top, left + side, top + side


def image_key(img: Image.Image) -> str:
    """Cache key of a photo's pixels: a hash of every 4th pixel in each direction (11x faster than all of them on
    12 MP; a collision would only reuse another photo's detections, and needs identical pixels on that grid)."""
    step = 4 if min(img.size) >= 64 else 1
    sample = img.resize((img.width // step, img.height // step), Image.Resampling.NEAREST) if step > 1 else img
    return hashlib.blake2b(sample.tobytes(), digest_size=16).hexdigest() + f"{img.size}{img.mode}"


class FaceEditor:
    def __init__(
        self,
        generator: Generator,
        discriminator: Discriminator | None = None,
        detector: FaceDetector | None = None,
        info: dict[str, Any] | None = None,
        change_smoothing: float = CHANGE_SMOOTHING,
        change_window: float = CHANGE_WINDOW,
        regions: RegionMaps | None = None,
        guided: bool | None = None,
        segmenter: FaceSegmenter | None = None,
        hair_colours: HairColourModel | None = None,
        keep_list: KeepList | None = None,
    ):
        """change_smoothing: see CHANGE_SMOOTHING (0 pastes the change as G made it); change_window: see CHANGE_WINDOW,
        used only without region maps (0 keeps the change up to the crop's edge); regions: where each attribute lives,
        which gates the change; guided: edge-aware upsampling of the change (None: on exactly when there are regions);
        segmenter: each face's person and skin masks, which further gate hair edits (with region maps only);
        hair_colours: the colours real hair has, which hair-colour edits take their chroma from (with region maps and
        a segmenter; None: G's own colour); keep_list: which attributes this G edits well enough to keep, counted on its
        portrait sheet (None: not judged, none marked experimental)."""
        self.G = generator.eval()
        self.segmenter = segmenter
        guided = regions is not None if guided is None else guided
        self.compositor = Compositor(regions, change_smoothing, change_window, guided, hair_colours=hair_colours)
        self.D = discriminator.eval() if discriminator is not None else None
        self.config: StarGANConfig = generator.cfg
        if keep_list is not None:
            keep_list.check(self.config.labels.attributes)
        self.keep_list = keep_list
        self.detector = detector or FaceDetector()
        self.info = info or {}
        # detection cache by image digest: the faces, and the masks of those prepared so far (by face box)
        self._faces: OrderedDict[str, tuple[list[DetectedFace], dict[tuple[float, ...], FaceMasks | None]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        device: str = "cpu",
        change_smoothing: float = CHANGE_SMOOTHING,
        change_window: float = CHANGE_WINDOW,
        regions: str | Path | bool | RegionMaps | None = None,
        guided: bool | None = None,
        person_masks: bool = True,
        hair_colours: str | Path | bool | HairColourModel | None = None,
        keep_list: str | Path | bool | KeepList | None = None,
    ) -> FaceEditor:
        """Load a weights file (None: the shipped weights/stargan_celeba.safetensors) and its region maps: by default
        NAME.regions.safetensors beside it when that exists (a file without maps edits as before them), False none,
        or a path. person_masks: gate hair edits by each face's person and skin (the vendored MediaPipe models on
        LiteRT; without ai-edge-litert installed, one log line and the maps alone). hair_colours: the hair-colour
        model, found like the maps (hair_colours.safetensors beside the weights; False: none). keep_list: the
        attributes its portrait sheet kept, found like the maps (NAME.keep.json; ignored, with a log line, when it
        counted another file's sheet)."""
        loaded: LoadedWeights = load_weights(resolve_weights(path, "stargan"), kind="stargan", device=device)
        maps = find_regions(loaded.path, regions)
        kept = find_keep_list(loaded.path, keep_list)
        if kept is not None and not kept.judged_on(loaded.path):  # e.g. retrained in place: not counted yet
            log.warning("%s was judged on other weights than %s: no edit is marked.", Path(kept.path).name, loaded.path)
            kept = None
        model = load_mask_model() if person_masks and maps is not None else None
        return cls(
            loaded.modules["G"],
            loaded.modules.get("D"),
            info={**loaded.info, "path": str(loaded.path), "regions": maps.info.get("path") if maps else None},
            change_smoothing=change_smoothing,
            change_window=change_window,
            regions=maps,
            guided=guided,
            segmenter=FaceSegmenter(model) if model is not None else None,
            hair_colours=find_hair_colours(loaded.path, hair_colours) if maps is not None else None,
            keep_list=kept,
        )

    @property
    def change_smoothing(self) -> float:
        return self.compositor.smoothing

    @change_smoothing.setter
    def change_smoothing(self, sigma: float) -> None:
        self.compositor = dataclasses.replace(self.compositor, smoothing=sigma)

    @property
    def change_window(self) -> float:
        return self.compositor.window

    @change_window.setter
    def change_window(self, inner: float) -> None:
        self.compositor = dataclasses.replace(self.compositor, window=inner)

    @property
    def regions(self) -> RegionMaps | None:
        return self.compositor.regions

    @property
    def guided(self) -> bool:
        return self.compositor.guided

    @property
    def schema(self) -> LabelSchema:
        return self.config.labels

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.schema.attributes

    @property
    def experimental_attributes(self) -> tuple[str, ...]:
        """The attributes this G does not yet edit well enough to keep, by its keep list (none without one)."""
        return self.keep_list.experimental(self.attributes) if self.keep_list is not None else ()

    def detect(self, image: ImageSource) -> list[DetectedFace]:
        """Faces above the size and confidence thresholds, largest first (cached per image content)."""
        return self._detections(load_image(image))[1]

    def _detections(self, img: Image.Image) -> tuple[str, list[DetectedFace]]:
        """(cache key, faces) of a decoded photo."""
        key = image_key(img)
        with self._lock:
            if key in self._faces:
                self._faces.move_to_end(key)
                return key, self._faces[key][0]
        faces = self.detector.detect(img)
        with self._lock:
            self._faces[key] = (faces, {})
            while len(self._faces) > 8:
                self._faces.popitem(last=False)
        return key, faces

    def _face_masks(
        self, img: Image.Image, key: str | None, face: DetectedFace, aligned: AlignedFace
    ) -> FaceMasks | None:
        """The face's person and skin masks, computed once per face and kept with the photo's detections (key)."""
        if self.segmenter is None or self.regions is None:
            return None
        with self._lock:
            cached = self._faces[key][1] if key in self._faces else {}
            if face.box in cached:
                return cached[face.box]
        masks = self.segmenter.masks(img, aligned.matrix, aligned.size)
        with self._lock:
            cached[face.box] = masks
        return masks

    def clear_detections(self) -> None:
        """Forget the cached detections, so the next detect of any photo runs the detector again."""
        with self._lock:
            self._faces.clear()

    def prepare(self, image: ImageSource, face_index: int = 0) -> PreparedFace:
        img = load_image(image)
        key, faces = self._detections(img)
        if not faces:
            raise NoFaceError(NO_FACE_MESSAGE)
        if not 0 <= face_index < len(faces):
            raise NoFaceError(f"Face {face_index} was asked for, but the image has {len(faces)} face(s).")
        return self._prepare_face(img, faces[face_index], key)

    def _prepare_face(
        self, img: Image.Image, face: DetectedFace, key: str | None = None, uploaded: Image.Image | None = None
    ) -> PreparedFace:
        """A face of `img` ready to edit; its masks come from `uploaded` (default img), the photo `key` names."""
        aligned = align_face(img, face.landmarks, self.config.image_size)
        tensor = pil_to_tensor(aligned.crop)[None]
        canvas = FaceCanvas(img, aligned.matrix, aligned.crop.size)
        masks = self._face_masks(img if uploaded is None else uploaded, key, face, aligned)
        attributes = self.estimate_attributes(tensor)
        hat_masks = masks.under_a_hat() if masks is not None and wears_a_hat(attributes) else masks
        hair = self.compositor.hair_matte(canvas, hat_masks) if hat_masks is not None else None
        if attributes is not None and hair is not None and hair.reading is not None:  # the hair colour from its pixels
            attributes.update({c: float(c == hair.reading.colour) for c in HAIR_COLOURS if c in attributes})
        return PreparedFace(img, face, aligned, tensor, attributes, canvas, masks, hair)

    @torch.inference_mode()
    def estimate_attributes(self, crop: torch.Tensor) -> dict[str, float] | None:
        """Per-attribute probabilities from D's classification head, or None when D was not shipped."""
        if self.D is None:
            return None
        _, logits = self.D(crop.to(self._device))
        return {a: round(float(p), 4) for a, p in zip(self.attributes, torch.sigmoid(logits[0]))}

    def edit(
        self,
        image: ImageSource | PreparedFace,
        targets: Mapping[str, bool],
        strength: float = 1.0,
        face_index: int = 0,
        source: Mapping[str, float] | None = None,
        keep_detail: bool = True,
    ) -> EditResult:
        """Edit one face: targets {attribute: on/off}; untouched attributes keep their source value.

        Only the generator's change reaches the photo's own pixels, gated by the regions of the attributes it edits
        (see FaceEditor): G(x, c_trg) - G(x, c_src), so that pixels outside the change's footprint stay bit-exact.
        With keep_detail=False the generator's output itself is pasted (blurred by upscaling from the model's size).
        """
        prep = image if isinstance(image, PreparedFace) else self.prepare(image, face_index)
        source = source if source is not None else prep.attributes
        passes = edit_passes(self.schema, targets, source, strength)
        if not passes:
            return EditResult(prep.image.copy(), prep.aligned.crop, prep.aligned.crop, prep.attributes, prep.face)
        full, after, message = self._edit_photo(prep, prep.canvas, passes, targets, source, keep_detail, strength)
        return EditResult(full, prep.aligned.crop, after, prep.attributes, prep.face, message)

    def _edit_photo(
        self,
        prep: PreparedFace,
        canvas: FaceCanvas,
        passes: list[torch.Tensor],
        targets: Mapping[str, bool],
        source: Mapping[str, float] | None,
        keep_detail: bool,
        strength: float = 1.0,
    ) -> tuple[Image.Image, Image.Image, str | None]:
        """(photo with the edit composed into `canvas`, edited crop, a note for the person) for one face and its label
        passes. A hair colour is the colour model's recolour of the face's hair matte (Compositor.recolour_hair), with
        G's change shaping it; the other attributes are G's change pasted."""
        no_edit = edit_passes(self.schema, targets, source, 0.0)  # same label groups, source labels
        if keep_detail and len(passes) == 1 and self._no_edit_key(no_edit) not in prep.no_edit_outputs:
            # the first edit of a face: G(x, c_trg) and its reference G(x, c_src) in one batched forward
            both = self._generate(prep.tensor.expand(2, -1, -1, -1), [torch.stack([passes[0], no_edit[0]])])
            edited, reference = both[:1], both[1:]
            prep.no_edit_outputs[self._no_edit_key(no_edit)] = reference
        else:
            edited = self._generate(prep.tensor, passes)
            reference = self._no_edit_output(prep, no_edit) if keep_detail else None
        if not keep_detail:
            edited_crop = tensor_to_pil(edited[0])
            return self.compositor.paste_output(canvas, edited_crop), edited_crop, None
        changed, masks = changed_attributes(self.schema, passes, no_edit), self._masks(prep, source)
        size, x = self.config.image_size, prep.tensor[0]
        recolours = masks is not None and self.compositor.hair_colours is not None  # else G's own colour, as before
        colour = next((a for a in HAIR_COLOURS if targets.get(a)), None) if recolours else None
        change = self.compositor.image_change(edited, reference, self.compositor.gate(changed, size, masks))[0]
        pasted = [a for a in changed if colour is None or a not in HAIR_COLOURS]  # a recoloured hair: not G's change
        if colour is not None and not pasted:
            photo = canvas.photo.copy()  # the recolour works in place
        elif pasted == changed:
            photo = self._paste(canvas, change, reference, x, pasted, masks)
        else:
            paste = self.compositor.image_change(edited, reference, self.compositor.gate(pasted, size, masks))[0]
            photo = self._paste(canvas, paste, reference, x, pasted, masks)
        if colour is None:
            return photo, tensor_to_pil(x + change), None
        same = canvas is prep.canvas and wears_a_hat(source) == wears_a_hat(prep.attributes)
        matte = prep.hair if same else self.compositor.hair_matte(canvas, masks)
        reading = prep.hair.reading if prep.hair is not None else None
        shape = self.compositor.g_shape(x, change, self.compositor.gate(set(changed) & set(HAIR_COLOURS), size, masks))
        photo, message = self.compositor.recolour_hair(photo, matte, reading, colour, strength, shape)
        return photo, tensor_to_pil(x + change), message

    def _paste(
        self,
        canvas: FaceCanvas,
        change: torch.Tensor,
        reference: torch.Tensor,
        x: torch.Tensor,
        attributes: list[str],
        masks: FaceMasks | None,
    ) -> Image.Image:
        """`canvas`'s photo with G's change (3, S, S) of these attributes pasted (Compositor.paste_change)."""
        drawn = self.compositor.drawn_weight(attributes, self.config.image_size)
        photo_gate = self.compositor.photo_gate(attributes, masks)
        return self.compositor.paste_change(canvas, change, reference[0], x, photo_gate, drawn)

    @staticmethod
    def _masks(prep: PreparedFace, source: Mapping[str, float] | None) -> FaceMasks | None:
        """The face's masks as its edit sees them: with a hat on (as `source` reads the face), hair stays below it."""
        if prep.masks is not None and wears_a_hat(source):
            return prep.masks.under_a_hat()
        return prep.masks

    @staticmethod
    def _no_edit_key(no_edit: list[torch.Tensor]) -> tuple[float, ...]:
        return tuple(torch.cat(no_edit).tolist())

    def _no_edit_output(self, prep: PreparedFace, no_edit: list[torch.Tensor]) -> torch.Tensor:
        """G(x, c_src) through the same label groups; re-edits of this face reuse it (one G pass per label group)."""
        key = self._no_edit_key(no_edit)
        if key not in prep.no_edit_outputs:
            prep.no_edit_outputs[key] = self._generate(prep.tensor, no_edit)
        return prep.no_edit_outputs[key]

    def _generate(self, x: torch.Tensor, passes: list[torch.Tensor]) -> torch.Tensor:
        """G applied once per label-group pass, each on the previous output with its own c; the last output, on the
        CPU. x (B, 3, S, S); each c (c_dim) or (B, c_dim)."""
        with torch.inference_mode():
            for c in passes:
                c = c[None] if c.ndim == 1 else c
                x = self.G(x.to(self._device), c.to(self._device)).cpu()
        return x

    @torch.inference_mode()
    def translate_crops(self, crops: torch.Tensor, c: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
        """The generator alone on aligned model-size crops (N, 3, S, S) in [-1, 1] with label vectors c (N, c_dim):
        no detection, no paste-back. Returns (N, 3, S, S) on the CPU; what evaluation judges as the "raw" edit."""
        outs = [
            self.G(crops[i : i + batch_size].to(self._device), c[i : i + batch_size].to(self._device)).float().cpu()
            for i in range(0, len(crops), batch_size)
        ]
        return torch.cat(outs) if outs else crops[:0].float()

    def preview_grid(
        self, image: ImageSource | PreparedFace, face_index: int = 0, keep_detail: bool = True
    ) -> Image.Image:
        """The aligned face followed by every single-attribute edit, from one batched forward."""
        prep = image if isinstance(image, PreparedFace) else self.prepare(image, face_index)
        edits = single_attribute_edits(self.schema, prep.attributes)
        groups = [g for g, attrs in enumerate(self.schema.groups) for _ in attrs]  # the order of `edits`
        no_edit = [source_label_vector(self.schema, g, prep.attributes) for g in range(len(self.schema.groups))]
        cs = torch.stack([c for _, c in edits] + (no_edit if keep_detail else []))
        with torch.inference_mode():
            out = self.G(prep.tensor.to(self._device).expand(len(cs), -1, -1, -1), cs.to(self._device)).cpu()
        size, masks = self.config.image_size, self._masks(prep, prep.attributes)
        gates = [
            self.compositor.gate(changed_attributes(self.schema, [c], [no_edit[g]]), size, masks)
            for (_, c), g in zip(edits, groups)
        ]
        if keep_detail:
            gate = None if gates[0] is None else torch.stack(gates)[:, None]
            out = prep.tensor + self.compositor.image_change(out[: len(edits)], out[len(edits) :][groups], gate)
        return make_grid([prep.aligned.crop] + [tensor_to_pil(o) for o in out], ncols=len(edits) + 1)

    def edit_previews(
        self, image: ImageSource | PreparedFace, face_index: int = 0, size: int = 256
    ) -> list[EditPreview]:
        """Every single-attribute edit of one face, pasted back like `edit` does and shown as a padded square
        around the face, `size` px wide (the photo is cut and downscaled first, so a 12 MP photo costs no more)."""
        prep = image if isinstance(image, PreparedFace) else self.prepare(image, face_index)
        square = face_square(prep.face.box, prep.image.size)
        view = prep.image.resize((size, size), Image.Resampling.LANCZOS, box=square, reducing_gap=3.0)
        canvas = FaceCanvas(view, view_matrix(prep.aligned.matrix, square, size), prep.aligned.crop.size)
        previews = []
        for label, _ in single_attribute_edits(self.schema, prep.attributes):
            attribute, on = label[1:], label[0] == "+"
            targets = {attribute: on}
            passes = edit_passes(self.schema, targets, prep.attributes)
            photo, _, _ = self._edit_photo(prep, canvas, passes, targets, prep.attributes, keep_detail=True)
            caption = display_name(attribute) if on else f"No {display_name(attribute).lower()}"
            previews.append(EditPreview(attribute, caption, targets, photo))
        return previews

    def face_thumbnails(self, image: ImageSource, size: int = 128) -> list[Image.Image]:
        """A padded square around each detected face, largest first (the order of `detect`)."""
        img = load_image(image)
        return [
            img.resize((size, size), Image.Resampling.LANCZOS, box=face_square(f.box, img.size), reducing_gap=3.0)
            for f in self.detect(img)
        ]

    def edit_all_faces(
        self, image: ImageSource, targets: Mapping[str, bool], strength: float = 1.0, keep_detail: bool = True
    ) -> EditResult:
        """Every detected face edited with the same changes, one after another into one photo."""
        img = load_image(image)
        key, faces = self._detections(img)
        if not faces:
            raise NoFaceError(NO_FACE_MESSAGE)
        first = None
        uploaded = img
        for face in faces:  # each face's masks come from the photo as uploaded, cached with its detections
            result = self.edit(self._prepare_face(img, face, key, uploaded), targets, strength, keep_detail=keep_detail)
            first = first or result
            img = result.image
        return EditResult(img, first.face_before, first.face_after, first.attributes_before, first.face)

    def preview_labels(self, attributes: Mapping[str, float] | None = None) -> list[str]:
        return ["input"] + [name for name, _ in single_attribute_edits(self.schema, attributes)]

    @property
    def _device(self) -> torch.device:
        return module_device(self.G)
