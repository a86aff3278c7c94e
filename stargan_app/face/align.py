"""CelebA-style face alignment (shared by data preparation and serving) and feathered paste-back."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from stargan_app.errors import NoFaceError

# Left eye, right eye, mouth centre of an aligned CelebA face, centre-cropped 178x178 and resized to 128.
_REFERENCE_128 = np.array([[50.2, 65.4], [77.1, 65.4], [63.6, 95.3]], dtype=np.float64)

_DEGENERATE = "The face landmarks are degenerate (coincident or not finite), so the face cannot be aligned."


def celeba_reference_points(size: int) -> np.ndarray:
    """Reference (left eye, right eye, mouth centre) positions, shape (3, 2), in a size x size crop."""
    return _REFERENCE_128 * (size / 128.0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama; rotation, uniform scale, translation) mapping src onto dst, as 2x3."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"expected two (N, 2) point arrays with N >= 2, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise NoFaceError(_DEGENERATE)
    with np.errstate(all="ignore"):
        src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
        src_c, dst_c = src - src_mean, dst - dst_mean
        src_var = float((src_c**2).sum(axis=1).mean())
        dst_var = float((dst_c**2).sum(axis=1).mean())
        cov = dst_c.T @ src_c / len(src)
    if not (math.isfinite(src_var) and math.isfinite(dst_var) and np.isfinite(cov).all()):
        raise NoFaceError(_DEGENERATE)
    with np.errstate(over="ignore"):
        tol = float(1e-12 * (1.0 + np.abs(src).max()) ** 2)
    if src_var <= tol or dst_var <= 0.0:
        raise NoFaceError(_DEGENERATE)
    try:
        u, d, vt = np.linalg.svd(cov)
    except np.linalg.LinAlgError:
        raise NoFaceError(_DEGENERATE) from None
    signs = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        signs[-1] = -1.0
    rotation = u @ np.diag(signs) @ vt
    scale = float((d * signs).sum() / src_var)
    if not math.isfinite(scale) or scale <= 0.0:
        raise NoFaceError(_DEGENERATE)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    if not np.isfinite(matrix).all():
        raise NoFaceError(_DEGENERATE)
    return matrix


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """An aligned square face crop and the 2x3 matrix mapping full-image coordinates to crop coordinates."""

    crop: Image.Image
    matrix: np.ndarray
    size: int


def _invert(matrix: np.ndarray) -> np.ndarray:
    a = matrix[:, :2]
    det = float(np.linalg.det(a))
    if not math.isfinite(det) or abs(det) < 1e-300:
        raise ValueError("the affine matrix is not invertible")
    inv = np.empty((2, 3))
    inv[:, :2] = np.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]]) / det
    inv[:, 2] = -inv[:, :2] @ matrix[:, 2]
    return inv


def _bounds(
    inv: np.ndarray,
    width: float,
    height: float,
    margin: int,
    limit: tuple[int, int] | None,
    origin: tuple[float, float] = (0.0, 0.0),
) -> tuple[int, int, int, int] | None:
    """Integer bounding box, clipped to ``limit`` (None: not clipped), of the image-space footprint of the crop
    rectangle at ``origin`` of size width x height (crop coordinates)."""
    x0, y0 = origin
    x1, y1 = x0 + width, y0 + height
    corners = np.array([[x0, y0, 1.0], [x1, y0, 1.0], [x0, y1, 1.0], [x1, y1, 1.0]])
    with np.errstate(all="ignore"):
        pts = corners @ inv.T
    if not np.isfinite(pts).all():
        return None
    lo, hi = np.floor(pts.min(axis=0)) - margin, np.ceil(pts.max(axis=0)) + margin
    if limit is not None:
        lo, hi = np.clip(lo, 0, limit), np.clip(hi, 0, limit)
    x0, y0, x1, y1 = int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


MIN_CROP_INSIDE = 16  # a crop whose footprint is more than this many times its part inside the photo is refused


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def align_face(img: Image.Image, landmarks: np.ndarray, size: int) -> AlignedFace:
    """Warp the face with these 5 MTCNN landmarks onto the CelebA reference layout in a size x size crop."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2):
        raise ValueError(f"expected (5, 2) landmarks, got shape {lm.shape}")
    if size < 1:
        raise ValueError("size must be positive")
    if not np.isfinite(lm).all():
        raise NoFaceError(_DEGENERATE)
    src = np.stack([lm[0], lm[1], (lm[3] + lm[4]) / 2.0])
    matrix = similarity_transform(src, celeba_reference_points(size))
    scale = math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))
    if not math.isfinite(scale) or size / scale < 1.0:
        raise NoFaceError("The face is too small to edit.")
    try:
        inv = _invert(matrix)
    except ValueError:  # landmarks so far apart that the scale underflows (seen: one coordinate at 3e150)
        raise NoFaceError(_DEGENERATE) from None

    wanted = _bounds(inv, size, size, 2, None)  # the crop's footprint, unclipped
    inside = _bounds(inv, size, size, 2, img.size)
    if inside is None:
        raise NoFaceError("The face lies outside the image.")
    if _area(inside) * MIN_CROP_INSIDE < _area(wanted):  # not a face in this photo; the edge fill would be huge
        raise NoFaceError("The face lies mostly outside the image.")
    return AlignedFace(crop=warp_square(img, matrix, size), matrix=matrix, size=size)


def warp_square(img: Image.Image, matrix: np.ndarray, size: int) -> Image.Image:
    """The size x size RGB view of ``img`` under ``matrix`` (image -> view px, a similarity), bicubic; a big region
    is box-reduced first (no aliasing) and what lies past the photo's edge is filled from that edge, never black."""
    inv = _invert(np.asarray(matrix, np.float64))
    scale = math.sqrt(abs(float(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))
    # Downscaling a big face in one bicubic step aliases; box-reduce its region first so the warp scale is > 0.5.
    factor = max(1, int(1.0 / scale)) if scale < 0.5 else 1
    margin = 2 * factor + 2
    box = _bounds(inv, size, size, margin, img.size)
    wanted = _bounds(inv, size, size, margin, None)  # the view's footprint, unclipped
    if box is None or wanted is None:
        raise NoFaceError("The face lies outside the image.")
    if wanted != box:  # the crop reaches past the photo: fill the rest with the photo's edge, never black
        region = img.crop(box).convert("RGB")
        pad = ((box[1] - wanted[1], wanted[3] - box[3]), (box[0] - wanted[0], wanted[2] - box[2]), (0, 0))
        region = Image.fromarray(np.pad(np.asarray(region), pad, mode="edge"))
        box = wanted
        factor = min(factor, box[2] - box[0], box[3] - box[1])
        region = region.reduce(factor) if factor > 1 else region
    else:
        factor = min(factor, box[2] - box[0], box[3] - box[1])
        if img.mode == "RGB":
            region = img.reduce(factor, box=box) if factor > 1 else img.crop(box)
        else:
            region = img.crop(box).convert("RGB")
            region = region.reduce(factor) if factor > 1 else region
    view_to_region = inv.copy()
    view_to_region[:, 2] -= box[:2]
    view_to_region /= factor
    return region.transform(
        (size, size),
        Image.Transform.AFFINE,
        tuple(view_to_region.ravel()),
        resample=Image.Resampling.BICUBIC,
    )


def footprint(
    matrix: np.ndarray, rect: tuple[float, float, float, float], limit: tuple[int, int], margin: int = 2
) -> tuple[int, int, int, int] | None:
    """Integer box (x0, y0, x1, y1) of the image covering the crop rectangle ``rect`` (x0, y0, x1, y1 in crop
    coordinates) under ``matrix`` (image -> crop), plus ``margin`` px, clipped to ``limit``; None if it misses."""
    x0, y0, x1, y1 = rect
    return _bounds(_invert(np.asarray(matrix, np.float64)), x1 - x0, y1 - y0, margin, limit, (x0, y0))


def grid_matrix(matrix: np.ndarray, origin: tuple[float, float], step: float) -> np.ndarray:
    """2x3 map from a grid whose cells are ``step`` image px, its corner at image point ``origin``, to crop
    coordinates (``matrix``: image -> crop)."""
    m = np.asarray(matrix, np.float64)
    out = np.empty((2, 3))
    out[:, :2] = m[:, :2] * step
    out[:, 2] = m[:, :2] @ np.asarray(origin, np.float64) + m[:, 2]
    return out


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 map p -> outer(inner(p)) of two 2x3 affine maps."""
    outer, inner = np.asarray(outer, np.float64), np.asarray(inner, np.float64)
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def view_matrix(matrix: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """The image -> crop matrix seen from a view: ``box`` of the image resized to ``size`` px wide
    (view px -> crop px)."""
    return grid_matrix(matrix, box[:2], (box[2] - box[0]) / size)


@lru_cache(maxsize=16)
def feather_mask(width: int, height: int, feather: float) -> Image.Image:
    """Rectangular mask, 0 on a 2 px rim (bicubic edge bleed) then a smoothstep ramp over feather*size px."""

    def ramp(n: int) -> np.ndarray:
        centres = np.arange(n) + 0.5
        dist = np.minimum(centres, n - centres) - 2.0
        t = np.clip(dist / max(1.0, feather * n), 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)

    mask = np.outer(ramp(height), ramp(width))
    return Image.fromarray(np.rint(mask * 255.0).astype(np.uint8), "L")


def _warp_region(
    src: Image.Image,
    m: np.ndarray,
    box: tuple[int, int, int, int],
    step: int,
    resample: Image.Resampling,
) -> Image.Image:
    """Warp ``src`` (m: image -> src coords) onto ``box`` of the image via a grid ``step`` px coarser."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    step = max(1, min(step, width, height))
    grid_to_src = grid_matrix(m, (x0, y0), step)
    grid = (math.ceil(width / step), math.ceil(height / step))
    warped = src.transform(grid, Image.Transform.AFFINE, tuple(grid_to_src.ravel()), resample=resample)
    if step == 1:
        return warped
    src_box = (0.0, 0.0, width / step, height / step)
    return warped.resize((width, height), Image.Resampling.BILINEAR, box=src_box)


class FacePaster:
    """Pastes edited crops of one aligned face back into its photo, feather-blended.

    What does not depend on the edit (the warped feather mask, the photo's pixels under it, the warped reference)
    is computed once, so re-editing a face costs one warp of the new crop.
    """

    def __init__(self, img: Image.Image, matrix: np.ndarray, crop_size: tuple[int, int], feather: float = 0.1):
        m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
        if not np.isfinite(m).all():
            raise ValueError("the affine matrix is not finite")
        self.img, self.m, self.crop_size, self.feather = img, m, tuple(crop_size), float(max(feather, 0.0))
        self.box = _bounds(_invert(m), *self.crop_size, 2, img.size)
        # PIL's affine warp costs ~50 ns per output pixel, too slow for a big face at full resolution, so warp onto
        # a coarser grid (keeping >= 2 samples per crop pixel; the smooth mask needs only 1) and upsample with the
        # much faster separable resize.
        self.scale = math.sqrt(abs(float(np.linalg.det(m[:, :2]))))
        self._mask: Image.Image | None = None
        self._photo: np.ndarray | None = None
        self._reference: tuple[bytes, np.ndarray] | None = None

    def paste(self, edited_crop: Image.Image, reference_crop: Image.Image | None = None) -> Image.Image:
        """New copy of the photo with ``edited_crop`` pasted in.

        With ``reference_crop`` (what the model makes of the face without the edit), only the change
        ``edited_crop - reference_crop`` is added to the photo's own pixels, so a low-resolution model recolours
        the face without replacing its detail by an upscaled, blurred copy.
        """
        if edited_crop.size != self.crop_size:
            raise ValueError(f"expected a {self.crop_size} crop, got {edited_crop.size}")
        out = self.img.copy()
        if self.box is None:
            return out
        content = self._warp(edited_crop)
        if reference_crop is not None:
            change = np.asarray(content, np.int16) - self._warped_reference(reference_crop)
            content = Image.fromarray(np.clip(self._photo_region() + change, 0, 255).astype(np.uint8))
        out.paste(content, self.box[:2], self._warped_mask())
        return out

    def _warp(self, crop: Image.Image) -> Image.Image:
        crop = crop if crop.mode == self.img.mode else crop.convert(self.img.mode)
        return _warp_region(crop, self.m, self.box, int(0.5 / self.scale), Image.Resampling.BICUBIC)

    def _warped_mask(self) -> Image.Image:
        if self._mask is None:
            mask = feather_mask(*self.crop_size, self.feather)
            self._mask = _warp_region(mask, self.m, self.box, int(1.0 / self.scale), Image.Resampling.BILINEAR)
        return self._mask

    def _photo_region(self) -> np.ndarray:
        if self._photo is None:
            self._photo = np.asarray(self.img.crop(self.box), np.int16)
        return self._photo

    def _warped_reference(self, reference_crop: Image.Image) -> np.ndarray:
        key = reference_crop.tobytes()
        if self._reference is None or self._reference[0] != key:
            self._reference = (key, np.asarray(self._warp(reference_crop), np.int16))
        return self._reference[1]


def paste_back(
    img: Image.Image,
    edited_crop: Image.Image,
    matrix: np.ndarray,
    feather: float = 0.1,
    reference_crop: Image.Image | None = None,
) -> Image.Image:
    """New copy of ``img`` with ``edited_crop`` warped back through ``matrix`` (image -> crop) and feather-blended
    (see FacePaster.paste for ``reference_crop``)."""
    return FacePaster(img, matrix, edited_crop.size, feather).paste(edited_crop, reference_crop)


def celeba_center_crop(img: Image.Image, size: int) -> Image.Image:
    """Data preparation half of the geometry: CelebA aligned image -> centre square crop -> size x size."""
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.resize((size, size), Image.BICUBIC, box=(left, top, left + side, top + side), reducing_gap=None)
