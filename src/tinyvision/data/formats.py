"""Readers for the real file formats, validating everything they read.

IDX (MNIST, Fashion-MNIST; gzipped or not) and the CIFAR-10 python pickles. A file
that is truncated, corrupt or not what its name says raises `UserError` with the
file's path and the problem, never a numpy or pickle traceback.

Dataset files are untrusted input (any folder on the lookup path can hold them), so
the CIFAR-10 pickles are read by `SafeUnpickler`: it builds only dicts, lists, bytes,
numbers and inert stand-ins for numpy arrays, never calling anything a file names, and
the arrays are rebuilt afterwards from checked bytes. Every file is read with a size cap.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from tinyvision.errors import UserError

IDX_UBYTE = 0x08
# The largest real file (MNIST train images) is 47 MB decompressed, a CIFAR-10 batch 31 MB.
MAX_FILE_BYTES = 256 * 2**20
MAX_NDIM = 32  # numpy's own limit is 64; real files have 1 to 3


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's content, decompressed when it is gzipped (by magic, not by name).

    Reads at most `limit` bytes (after decompression), so a gzip bomb or a huge file
    is refused before it fills the memory.
    """
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        with path.open("rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            data = _read_gzip(f, limit + 1, path) if gzipped else f.read(limit + 1)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(data) > limit:
        raise UserError(
            f"{path}: more than {limit // 2**20} MiB{' decompressed' if gzipped else ''}, "
            "far larger than any MNIST or CIFAR-10 file; refusing to read it"
        )
    return data


def _read_gzip(f, n: int, path: Path) -> bytes:
    try:
        with gzip.GzipFile(fileobj=f) as g:
            return g.read(n)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise UserError(f"{path}: corrupt or truncated gzip data ({e})") from None


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Parse IDX bytes: magic 0x00 0x00 <type> <ndim>, ndim big-endian sizes, the data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserError(f"{path}: not an IDX file (bad magic number)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != IDX_UBYTE:
        raise UserError(f"{path}: IDX element type 0x{dtype_code:02x}, expected unsigned bytes")
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise UserError(f"{path}: truncated IDX header")
    if ndim > MAX_NDIM:
        raise UserError(f"{path}: IDX header says {ndim} dimensions; not an image or label file")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(shape)  # Python ints: a hostile header cannot overflow it
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


# --- CIFAR-10 pickles, read without running anything the file names ---------------------

# Plain numeric element types; no object, void or structured dtypes.
_DTYPE_CODES = frozenset(f"{kind}{size}" for kind in "iu" for size in (1, 2, 4, 8)) | {
    "f2",
    "f4",
    "f8",
    "b1",
}


class _Refused(pickle.UnpicklingError):
    """The pickle names something a CIFAR-10 batch never holds."""


class _ArraySpec:
    """Stands for a numpy array while unpickling: holds the state, builds nothing."""

    __slots__ = ("state",)

    def __init__(self, state: Any = None):
        self.state = state

    def __setstate__(self, state: Any) -> None:  # pickle's BUILD
        self.state = state


class _DtypeSpec:
    """Stands for a numpy dtype: a whitelisted element type and, once built, a byte order."""

    __slots__ = ("code", "order")

    def __init__(self, code: str):
        self.code, self.order = code, "|"

    def __setstate__(self, state: Any) -> None:
        # numpy's dtype state: (version, byte order, subarray, names, fields, ...)
        if not (
            isinstance(state, tuple) and len(state) >= 5 and _text(state[1]) in ("<", ">", "|", "=")
        ):
            raise pickle.UnpicklingError("unexpected dtype state")
        if any(part is not None for part in state[2:5]):
            raise _Refused("a structured numpy dtype")
        self.order = _text(state[1])

    def to_numpy(self) -> np.dtype:
        return np.dtype(self.code if self.order in "|=" else self.order + self.code)


def _text(value: Any) -> str:
    """Python 2 pickles read with encoding="bytes" give bytes where Python 3 gives str."""
    if isinstance(value, bytes) and len(value) <= 64:
        return value.decode("ascii", "replace")
    if isinstance(value, str) and len(value) <= 64:
        return value
    raise pickle.UnpicklingError("expected a short string")


def _printable(value: Any) -> str:
    """A name from the file, safe to print on one line."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return "".join(c if c.isprintable() else "?" for c in text[:100])


class _Global:
    """A callable stand-in for one allowed global; no attributes a pickle could set."""

    __slots__ = ()


class _Ndarray(_Global):
    """`numpy.ndarray`: only ever passed to `_reconstruct`, never called."""

    __slots__ = ()


class _Reconstruct(_Global):
    """`numpy.core.multiarray._reconstruct(ndarray, (0,), b"b")`; the data come by BUILD."""

    __slots__ = ()

    def __call__(self, subtype: Any, shape: Any = None, typecode: Any = None) -> _ArraySpec:
        if not isinstance(subtype, _Ndarray):
            raise _Refused("numpy array reconstruction of a type other than numpy.ndarray")
        return _ArraySpec()


class _FromBuffer(_Global):
    """`numpy._core.numeric._frombuffer(buffer, dtype, shape, order)`: protocol 5 pickles."""

    __slots__ = ()

    def __call__(self, buf: Any, dtype: Any, shape: Any, order: Any) -> _ArraySpec:
        return _ArraySpec((1, shape, dtype, _text(order) == "F", buf))


class _Dtype(_Global):
    """`numpy.dtype(code, align, copy)` for the plain numeric codes only."""

    __slots__ = ()

    def __call__(self, code: Any, align: Any = False, copy: Any = False) -> _DtypeSpec:
        name = _text(code)
        if name not in _DTYPE_CODES:
            raise _Refused(f"numpy dtype {_printable(name)}")
        return _DtypeSpec(name)


class _Latin1Encode(_Global):
    """`_codecs.encode(text, "latin1")`: how Python 3 writes bytes at protocol 2."""

    __slots__ = ()

    def __call__(self, text: Any, encoding: Any = "utf-8") -> bytes:
        if not isinstance(text, str) or _text(encoding) not in ("latin1", "latin-1"):
            raise _Refused(f"_codecs.encode with encoding {_printable(encoding)}")
        return text.encode("latin1")


_NDARRAY, _FROMBUFFER = _Ndarray(), _FromBuffer()
_ALLOWED_GLOBALS: dict[tuple[str, str], _Global] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Dtype(),
    ("numpy.core.multiarray", "_reconstruct"): _Reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _Reconstruct(),
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("_codecs", "encode"): _Latin1Encode(),
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, tuples, bytes, strings, numbers and numpy array stand-ins.

    Every global a pickle names goes through `find_class`: only the few numpy names a
    CIFAR-10 batch uses are known, and each maps to an inert stand-in above, so no
    function or class from the file is ever called (no `os.system`, `eval`, `getattr`...).
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(_printable(f"{module}.{name}")) from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("a persistent id")


def _build_array(spec: _ArraySpec) -> np.ndarray:
    """The numpy array from `ndarray.__setstate__`'s state, every part of it checked."""
    state = spec.state
    if not (isinstance(state, tuple) and len(state) == 5):
        raise pickle.UnpicklingError("unexpected numpy array state")
    _, shape, dtype, fortran, raw = state
    if not isinstance(dtype, _DtypeSpec) or not isinstance(raw, (bytes, bytearray)):
        raise pickle.UnpicklingError("numpy array state without a dtype or raw bytes")
    if not (
        isinstance(shape, tuple)
        and len(shape) <= MAX_NDIM
        and all(type(n) is int and n >= 0 for n in shape)
    ):
        raise pickle.UnpicklingError("bad numpy array shape")
    np_dtype = dtype.to_numpy()
    if math.prod(shape) * np_dtype.itemsize != len(raw):
        raise pickle.UnpicklingError("numpy array shape does not match its data")
    flat = np.frombuffer(raw, dtype=np_dtype)
    return flat.reshape(shape, order="F" if fortran else "C").copy()


def safe_unpickle(raw: bytes, arrays: tuple[bytes, ...] = ()) -> Any:
    """Unpickle with `SafeUnpickler`; the stand-ins under the top-level keys `arrays`
    become numpy arrays. Only those: a pickle can reference one big stand-in from
    thousands of places, and building each would copy its data each time."""
    obj = SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    if isinstance(obj, dict):
        for key in arrays:
            if isinstance(obj.get(key), _ArraySpec):
                obj[key] = _build_array(obj[key])
    return obj


def _cifar_labels(labels: Any, path: Path, num_classes: int) -> np.ndarray:
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
        labels = labels.tolist()
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise UserError(f"{path}: b'labels' must be a list of integers")
    if labels and (min(labels) < 0 or max(labels) >= num_classes):
        raise UserError(f"{path}: labels outside 0..{num_classes - 1}")
    return np.asarray(labels, dtype=np.int64)


def read_cifar_batch(path: Path, num_classes: int = 10):
    """One CIFAR-10 python batch: images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    raw = read_bytes(path)
    try:
        batch = safe_unpickle(raw, arrays=(b"data", b"labels"))
    except _Refused as e:
        raise UserError(
            f"{path}: refused to unpickle {e}: a CIFAR-10 batch holds only numpy arrays, "
            "lists, bytes and numbers (the file may be malicious; delete it)"
        ) from None
    except Exception as e:  # pickle raises many kinds on a corrupt stream
        raise UserError(f"{path}: not a readable CIFAR-10 pickle ({type(e).__name__})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise UserError(f"{path}: not a CIFAR-10 batch (no b'data' / b'labels' entries)")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise UserError(f"{path}: b'data' must be a uint8 N x 3072 array")
    if data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{path}: rows of {data.shape[1]} values, expected 3072 (3x32x32)")
    labels = _cifar_labels(batch[b"labels"], path, num_classes)
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(data)} images but {len(labels)} labels")
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
