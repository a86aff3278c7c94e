"""Training data: CelebA layout reader with the two-group split, and the idx (.gz) reader for MNIST/Fashion."""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stargan_app.face.align import celeba_center_crop
from stargan_app.imaging import to_model_range


@dataclass
class CelebASplit:
    images: torch.Tensor  # uint8 (N, 3, S, S): every usable training image, decoded once
    labels: torch.Tensor  # float (N, n_attributes) in {0, 1}, columns in schema order
    group_indices: list[torch.Tensor]  # per label group, rows of `images` that belong to it
    test_files: list[str]  # held-out file names (the last ids), never trained on
    test_labels: torch.Tensor  # float (n_test, n_attributes)
    skipped: int  # corrupt or missing images left out


def read_celeba_attributes(data_dir: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """list_attr_celeba.txt -> (file names sorted by id, attribute names, {0,1} matrix)."""
    lines = (Path(data_dir) / "list_attr_celeba.txt").read_text().splitlines()
    names = lines[1].split()
    rows = [ln.split() for ln in lines[2:] if ln.strip()]
    rows.sort(key=lambda r: r[0])
    files = [r[0] for r in rows]
    values = (np.array([[int(v) for v in r[1:]] for r in rows], dtype=np.int8) > 0).astype(np.float32)
    return files, names, values


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


def load_celeba(
    data_dir: str | Path, groups: tuple[tuple[str, ...], ...], image_size: int, test_size: int, max_images: int = 0
) -> CelebASplit:
    files, names, values = read_celeba_attributes(data_dir)
    missing = [a for g in groups for a in g if a not in names]
    if missing:
        raise ValueError(f"attributes not in list_attr_celeba.txt: {missing}")
    columns = [names.index(a) for g in groups for a in g]
    labels = values[:, columns]
    test_files, test_labels = files[len(files) - test_size :], labels[len(files) - test_size :]
    files, labels = files[: len(files) - test_size], labels[: len(files) - test_size]
    if max_images:
        files, labels = files[:max_images], labels[:max_images]
    images, keep = decode_images(Path(data_dir) / "img_align_celeba", files, image_size)
    labels = labels[keep]
    offsets = np.cumsum([0] + [len(g) for g in groups])
    group = assign_groups(labels, [list(range(offsets[i], offsets[i + 1])) for i in range(len(groups))])
    return CelebASplit(
        images=images,
        labels=torch.from_numpy(labels),
        group_indices=[torch.from_numpy(np.flatnonzero(group == g)) for g in range(len(groups))],
        test_files=test_files,
        test_labels=torch.from_numpy(test_labels),
        skipped=len(files) - int(keep.sum()),
    )


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
    """Held-out faces as a float batch in [-1, 1] (unreadable files dropped)."""
    images, _ = decode_images(Path(folder), files, image_size)
    return to_model_range(images)


# ---------------------------------------------------------------- MNIST / Fashion-MNIST

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (optionally gzipped) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path.name} is not an unsigned-byte idx file")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_idx_dataset(
    dataset: str, data_dir: str | Path | None, split: str = "train"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, 28, 28), int64 labels) from the idx .gz files, or torchvision's download if no dir."""
    if not data_dir:
        return _download_idx_dataset(dataset, split)
    image_file, label_file = IDX_FILES[split]
    d = Path(data_dir)
    images = read_idx(d / image_file if (d / image_file).exists() else d / image_file.removesuffix(".gz"))
    labels = read_idx(d / label_file if (d / label_file).exists() else d / label_file.removesuffix(".gz"))
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _download_idx_dataset(dataset: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion": datasets.FashionMNIST}[dataset]
    ds = cls(root=str(Path.home() / ".cache" / "stargan_app"), train=split == "train", download=True)
    return ds.data.clone(), ds.targets.clone().long()
