"""CelebA: the attribute file, its split and the image readers, for every trainer, the evaluation and the region maps.

Ids are the file names sorted; the last HELD_OUT of them are held out from every StarGAN run, the guide, the
judge and the region maps, and are what `eval` edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stargan_app.face.align import celeba_center_crop
from stargan_app.imaging import to_model_range

HELD_OUT = 1000  # the last ids, never trained on
IMAGES = "img_align_celeba"  # the images' folder inside a CelebA layout


def read_celeba_attributes(data_dir: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """list_attr_celeba.txt -> (file names sorted by id, attribute names, {0,1} matrix)."""
    lines = (Path(data_dir) / "list_attr_celeba.txt").read_text().splitlines()
    names = lines[1].split()
    rows = [ln.split() for ln in lines[2:] if ln.strip()]
    rows.sort(key=lambda r: r[0])
    files = [r[0] for r in rows]
    values = (np.array([[int(v) for v in r[1:]] for r in rows], dtype=np.int8) > 0).astype(np.float32)
    return files, names, values


def decode_images(folder: Path, files: list[str], image_size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Decode, centre-crop and resize every file once; unreadable files are skipped (keep mask False)."""
    out = np.zeros((len(files), image_size, image_size, 3), dtype=np.uint8)
    keep = np.zeros(len(files), dtype=bool)
    for i, name in enumerate(files):
        try:
            with Image.open(folder / name) as im:
                out[i] = np.asarray(celeba_center_crop(im.convert("RGB"), image_size))
            keep[i] = True
        except (OSError, ValueError, SyntaxError):
            continue
    return torch.from_numpy(out[keep]).permute(0, 3, 1, 2).contiguous(), keep


def load_face_crops(folder: str | Path, files: list[str], image_size: int) -> torch.Tensor:
    """Faces as a float batch in [-1, 1] (unreadable files dropped)."""
    images, _ = decode_images(Path(folder), files, image_size)
    return to_model_range(images)


@dataclass
class HeldOut:
    """Held-out faces: their photos, labels and training-geometry crops."""

    photos: list[Path]  # the CelebA images, the "photos" the pipeline edits
    truth: torch.Tensor  # (N, n_attributes) labels in the asked attribute order
    crops: torch.Tensor  # (N, 3, S, S) uint8


@dataclass
class CelebASplit:
    """The attribute file read once: ids before `split` are training ids, the rest are held out."""

    folder: Path  # img_align_celeba/
    files: list[str]  # image names sorted by id
    names: list[str]  # all attribute names of the file
    values: torch.Tensor  # (N, len(names)) in {0, 1}
    split: int  # the first held-out id

    def labels(self, attributes: tuple[str, ...]) -> torch.Tensor:
        """(N, len(attributes)) columns of `values`, in the order asked."""
        missing = [a for a in attributes if a not in self.names]
        if missing:
            raise ValueError(f"attributes not in list_attr_celeba.txt: {missing}")
        return self.values[:, [self.names.index(a) for a in attributes]]

    def crops(self, ids: list[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 crops of the readable ones among ids, their ids)."""
        images, keep = decode_images(self.folder, [self.files[i] for i in ids], size)
        return images, torch.tensor(ids, dtype=torch.long)[torch.from_numpy(keep)]

    def held_out(self, attributes: tuple[str, ...], size: int, limit: int = 0) -> HeldOut:
        """The readable held-out faces (the first `limit` ids of them; 0 = all)."""
        crops, ids = self.crops(list(range(self.split, len(self.files)))[: limit or None], size)
        return HeldOut([self.folder / self.files[i] for i in ids.tolist()], self.labels(attributes)[ids], crops)


def read_split(data_dir: str | Path, test_size: int = HELD_OUT) -> CelebASplit:
    """The CelebA layout at data_dir with its last test_size ids held out."""
    files, names, values = read_celeba_attributes(data_dir)
    if not 0 <= test_size < len(files):
        raise ValueError(f"test_size must leave training ids, got {test_size} of {len(files)}")
    return CelebASplit(Path(data_dir) / IMAGES, files, names, torch.from_numpy(values), len(files) - test_size)


@dataclass
class TrainingFaces:
    """A StarGAN or guide run's training images, decoded once, and its label groups."""

    folder: Path  # img_align_celeba/
    images: torch.Tensor  # uint8 (N, 3, S, S): every usable training image
    labels: torch.Tensor  # float (N, n_attributes) in {0, 1}, columns in schema order
    group_indices: list[torch.Tensor]  # per label group, rows of `images` that belong to it
    test_files: list[str]  # held-out file names (the last ids), never trained on
    test_labels: torch.Tensor  # float (n_test, n_attributes)
    skipped: int  # corrupt or missing images left out


def assign_groups(values: np.ndarray, group_columns: list[list[int]]) -> np.ndarray:
    """Group per image as in multi-dataset StarGAN: the last group with any attribute present wins
    (an image with a group-B attribute is a B image); images with none go to the smaller group."""
    group = np.full(len(values), -1)
    for g, cols in enumerate(group_columns):
        group[values[:, cols].any(axis=1)] = g
    counts = np.bincount(group[group >= 0], minlength=len(group_columns))
    for i in np.flatnonzero(group < 0):
        group[i] = int(np.argmin(counts))
        counts[group[i]] += 1
    return group


def load_training_faces(
    data_dir: str | Path, groups: tuple[tuple[str, ...], ...], image_size: int, test_size: int, max_images: int = 0
) -> TrainingFaces:
    """The training ids' images (the first max_images of them; 0 = all) and labels of `groups`, split into groups."""
    celeba = read_split(data_dir, test_size)
    labels = celeba.labels(tuple(a for g in groups for a in g)).numpy()
    files, train_labels = celeba.files[: celeba.split], labels[: celeba.split]
    if max_images:
        files, train_labels = files[:max_images], train_labels[:max_images]
    images, keep = decode_images(celeba.folder, files, image_size)
    train_labels = train_labels[keep]
    offsets = np.cumsum([0] + [len(g) for g in groups])
    group = assign_groups(train_labels, [list(range(offsets[i], offsets[i + 1])) for i in range(len(groups))])
    return TrainingFaces(
        folder=celeba.folder,
        images=images,
        labels=torch.from_numpy(train_labels),
        group_indices=[torch.from_numpy(np.flatnonzero(group == g)) for g in range(len(groups))],
        test_files=celeba.files[celeba.split :],
        test_labels=torch.from_numpy(labels[celeba.split :]),
        skipped=len(files) - int(keep.sum()),
    )
