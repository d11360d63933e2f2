"""Readers for the real file formats, validating everything they read.

IDX (MNIST, Fashion-MNIST; gzipped or not) and the CIFAR-10 python pickles. A file
that is truncated, corrupt or not what its name says raises `UserError` with the
file's path and the problem, never a numpy or pickle traceback.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from pathlib import Path

import numpy as np

from tinyvision.errors import UserError

IDX_UBYTE = 0x08


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzipped (by magic, not by name)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise UserError(f"{path}: corrupt or truncated gzip data ({e})") from None
    return raw


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Parse IDX bytes: magic 0x00 0x00 <type> <ndim>, ndim big-endian sizes, the data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserError(f"{path}: not an IDX file (bad magic number)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != IDX_UBYTE:
        raise UserError(f"{path}: IDX element type 0x{dtype_code:02x}, expected unsigned bytes")
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise UserError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    body = data[4 + 4 * ndim :]
    if len(body) != expected:
        what = "truncated" if len(body) < expected else "has trailing bytes"
        raise UserError(
            f"{path}: {what}: header says {shape} = {expected} bytes, found {len(body)}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()  # writable, for torch


def read_idx(path: Path) -> np.ndarray:
    return parse_idx(read_bytes(path), path)


def read_idx_pair(images_path: Path, labels_path: Path, num_classes: int = 10):
    """Images (N, 1, H, W) uint8 and labels (N,) int64, checked against each other."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise UserError(f"{images_path}: expected N x H x W images, got shape {images.shape}")
    if labels.ndim != 1:
        raise UserError(f"{labels_path}: expected a vector of labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
            "labels: the two files do not belong together"
        )
    if len(labels) and labels.max() >= num_classes:
        raise UserError(f"{labels_path}: label {labels.max()} outside 0..{num_classes - 1}")
    return images[:, None, :, :], labels.astype(np.int64)


def read_cifar_batch(path: Path, num_classes: int = 10):
    """One CIFAR-10 python batch: images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    raw = read_bytes(path)
    try:
        batch = pickle.loads(raw, encoding="bytes")
    except Exception as e:  # pickle raises many kinds on a corrupt stream
        raise UserError(f"{path}: not a readable CIFAR-10 pickle ({type(e).__name__})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise UserError(f"{path}: not a CIFAR-10 batch (no b'data' / b'labels' entries)")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"], dtype=np.int64)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise UserError(f"{path}: b'data' must be a uint8 N x 3072 array")
    if data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{path}: rows of {data.shape[1]} values, expected 3072 (3x32x32)")
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{path}: labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Write a uint8 array as IDX (the tests use it to make small real-format files)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, IDX_UBYTE, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def write_cifar_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write a CIFAR-10 python batch in the official layout."""
    batch = {
        b"batch_label": path.name.encode(),
        b"labels": [int(v) for v in labels],
        b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1),
        b"filenames": [f"{i}.png".encode() for i in range(len(images))],
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))
