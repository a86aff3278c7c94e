"""MNIST and Fashion-MNIST: the idx (.gz) files, or torchvision's download."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

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
