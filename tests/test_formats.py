"""The real file formats: IDX and CIFAR-10 pickles, and every way they can be broken."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from tinyvision.data import formats
from tinyvision.data.formats import (
    read_cifar_batch,
    read_idx,
    read_idx_pair,
    write_cifar_batch,
    write_idx,
)
from tinyvision.errors import UserError


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", array, compress=compress)
    assert np.array_equal(read_idx(tmp_path / "a.idx"), array)


def test_idx_pair_shapes(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "y", np.arange(5, dtype=np.uint8))
    images, labels = read_idx_pair(tmp_path / "x", tmp_path / "y")
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 3, 4]


def test_truncated_idx_names_file_and_sizes(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8), compress=False)
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(data[:-100])
    with pytest.raises(UserError, match=r"x: truncated.*3920 bytes, found 3820"):
        read_idx(tmp_path / "x")


def test_truncated_gzip(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8))
    data = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="x.gz: corrupt or truncated gzip"):
        read_idx(tmp_path / "x.gz")


def test_bad_magic(tmp_path):
    (tmp_path / "x").write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(tmp_path / "x")


def test_mismatched_pair(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "y", np.zeros(4, np.uint8))
    with pytest.raises(UserError, match="5 images but .* 4 labels"):
        read_idx_pair(tmp_path / "x", tmp_path / "y")


def test_swapped_files(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "y", np.zeros(5, np.uint8))
    with pytest.raises(UserError, match="expected N x H x W"):
        read_idx_pair(tmp_path / "y", tmp_path / "x")


def test_label_out_of_range(tmp_path):
    write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "y", np.array([1, 12], np.uint8))
    with pytest.raises(UserError, match="label 12 outside 0..9"):
        read_idx_pair(tmp_path / "x", tmp_path / "y")


def test_cifar_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)
    labels = np.arange(7) % 10
    write_cifar_batch(tmp_path / "data_batch_1", images, labels)
    got_images, got_labels = read_cifar_batch(tmp_path / "data_batch_1")
    assert np.array_equal(got_images, images) and got_labels.tolist() == labels.tolist()


def test_cifar_corrupt_pickle(tmp_path):
    write_cifar_batch(tmp_path / "b", np.zeros((3, 3, 32, 32), np.uint8), np.zeros(3))
    data = (tmp_path / "b").read_bytes()
    (tmp_path / "b").write_bytes(data[:200])
    with pytest.raises(UserError, match="not a readable CIFAR-10 pickle"):
        read_cifar_batch(tmp_path / "b")


def test_cifar_wrong_row_size(tmp_path):
    batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (tmp_path / "b").write_bytes(pickle.dumps(batch))
    with pytest.raises(UserError, match="rows of 100 values, expected 3072"):
        read_cifar_batch(tmp_path / "b")


# --- CIFAR-10 pickles are read without running anything (SafeUnpickler) ------------------


def _batch(n: int = 3, **extra) -> dict:
    images = np.random.default_rng(0).integers(0, 256, (n, 3072), dtype=np.uint8)
    return {b"data": images, b"labels": [i % 10 for i in range(n)], **extra}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cifar_batch_any_pickle_protocol(tmp_path, protocol):
    batch = _batch(labels_array=np.arange(3))
    (tmp_path / "b").write_bytes(pickle.dumps(batch, protocol=protocol))
    images, labels = read_cifar_batch(tmp_path / "b")
    assert np.array_equal(images.reshape(3, -1), batch[b"data"]) and labels.tolist() == [0, 1, 2]
    assert images.flags.writeable


def test_cifar_batch_fortran_order_and_numpy_1_names(tmp_path):
    data = np.asfortranarray(_batch()[b"data"])
    raw = pickle.dumps({b"data": data, b"labels": [1, 2, 3]}, protocol=2)
    assert b"numpy._core.multiarray" in raw  # numpy 2 wrote it; numpy 1 wrote numpy.core
    (tmp_path / "b").write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    images, _ = read_cifar_batch(tmp_path / "b")
    assert np.array_equal(images.reshape(3, -1), data)


def _py2_batch(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch as Python 2's cPickle wrote the official files (protocol 2, str = bytes)."""

    def string(b: bytes) -> bytes:  # SHORT_BINSTRING or BINSTRING
        if len(b) < 256:
            return b"U" + bytes([len(b)]) + b
        return b"T" + len(b).to_bytes(4, "little") + b

    rows, cols = images.shape
    return b"".join(
        [
            b"\x80\x02}(",
            string(b"data"),
            b"cnumpy.core.multiarray\n_reconstruct\n",
            b"cnumpy\nndarray\n",
            b"K\x00\x85",
            string(b"b"),
            b"\x87R",  # _reconstruct(ndarray, (0,), 'b')
            b"(K\x01M" + rows.to_bytes(2, "little") + b"M" + cols.to_bytes(2, "little") + b"\x86",
            b"cnumpy\ndtype\n",
            string(b"u1"),
            b"K\x00K\x01\x87R",  # dtype('u1', 0, 1)
            b"(K\x03",
            string(b"|"),
            b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb",
            b"\x89",
            string(images.tobytes()),
            b"tb",  # ndarray.__setstate__((1, shape, ...))
            string(b"labels"),
            b"](",
            b"".join(b"K" + bytes([v]) for v in labels),
            b"e",
            string(b"batch_label"),
            string(b"training batch 1 of 5"),
            b"u.",
        ]
    )


def test_cifar_batch_as_python_2_wrote_it(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (4, 3072), dtype=np.uint8)
    raw = _py2_batch(images, [3, 1, 4, 1])
    plain = pickle.loads(raw, encoding="bytes")  # the reference: numpy's own unpickling
    assert np.array_equal(plain[b"data"], images)
    (tmp_path / "b").write_bytes(raw)
    got, labels = read_cifar_batch(tmp_path / "b")
    assert np.array_equal(got.reshape(4, -1), images) and labels.tolist() == [3, 1, 4, 1]


class _Subclass(np.ndarray):
    pass


class _Reduce:
    """Pickles as `func(*args)`, then `.__setstate__(state)` if given: what a crafted
    file calls on plain `pickle.loads`."""

    def __init__(self, func, *args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


@pytest.mark.parametrize(
    ("data", "refused"),
    [
        (_Reduce(eval, "1 + 1"), "__builtin__.eval"),  # protocol 2 spells builtins so
        (_Reduce(getattr, "x", "upper"), "__builtin__.getattr"),
        (np.array([b"x", 1], dtype=object), "numpy dtype O8"),
        (np.zeros(2, dtype=[("a", "u1"), ("b", "u1")]), "numpy dtype V2"),
        (np.zeros((2, 3072), np.uint8).view(_Subclass), "test_formats._Subclass"),
        (_Reduce(np._core.multiarray._reconstruct, np.dtype, (0,), b"b"), "numpy array rec"),
    ],
)
def test_cifar_pickle_with_other_globals_is_refused(tmp_path, data, refused):
    (tmp_path / "b").write_bytes(pickle.dumps({b"data": data, b"labels": [0, 1]}, protocol=2))
    with pytest.raises(UserError) as e:
        read_cifar_batch(tmp_path / "b")
    assert f"b: refused to unpickle {refused}" in str(e.value)
    assert "\n" not in str(e.value)


def test_refused_name_is_printed_on_one_line(tmp_path):
    # STACK_GLOBAL takes any strings, newlines included
    raw = b"\x80\x04\x8c\x0bos\nmodule\r\n\x94\x8c\x06system\x94\x93."
    (tmp_path / "b").write_bytes(raw)
    with pytest.raises(UserError, match=r"refused to unpickle os\?module\?\?\.system") as e:
        read_cifar_batch(tmp_path / "b")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "state",
    [
        (1, (2, 3072), "u1", False, b"\0" * 6144),  # a string where the dtype goes
        (1, (2**40, 2**40), np.dtype("u1"), False, b"\0" * 6144),  # more than the data
        (1, (2, -3072), np.dtype("u1"), False, b"\0" * 6144),
        (1, (2, 3072), np.dtype("u1"), False, [1, 2]),  # object array elements
    ],
)
def test_cifar_array_state_is_checked(tmp_path, state):
    """The state `ndarray.__setstate__` would get is checked before numpy sees it."""
    reconstruct = np._core.multiarray._reconstruct
    array = _Reduce(reconstruct, np.ndarray, (0,), b"b", state=state)
    (tmp_path / "b").write_bytes(pickle.dumps({b"data": array, b"labels": [0, 1]}, protocol=2))
    with pytest.raises(UserError, match="not a readable CIFAR-10 pickle"):
        read_cifar_batch(tmp_path / "b")
    good = (1, (2, 3072), np.dtype("u1"), False, b"\1" * 6144)
    array = _Reduce(reconstruct, np.ndarray, (0,), b"b", state=good)
    (tmp_path / "b").write_bytes(pickle.dumps({b"data": array, b"labels": [0, 1]}, protocol=2))
    assert read_cifar_batch(tmp_path / "b")[0].sum() == 6144  # the reference: it loads


def test_cifar_labels_are_checked(tmp_path):
    (tmp_path / "b").write_bytes(pickle.dumps(_batch(2) | {b"labels": [b"cat", 1]}))
    with pytest.raises(UserError, match="b'labels' must be a list of integers"):
        read_cifar_batch(tmp_path / "b")
    (tmp_path / "b").write_bytes(pickle.dumps(_batch(2) | {b"labels": [0, 10**30]}))
    with pytest.raises(UserError, match=r"labels outside 0\.\.9"):
        read_cifar_batch(tmp_path / "b")


@pytest.mark.parametrize("compress", [True, False])
def test_files_over_the_size_cap_are_refused_before_reading(tmp_path, monkeypatch, compress):
    monkeypatch.setattr(formats, "MAX_FILE_BYTES", 1000)
    write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.uint8), compress=compress)
    with pytest.raises(UserError, match="x: more than 0 MiB"):
        read_idx(tmp_path / "x")
    monkeypatch.setattr(formats, "MAX_FILE_BYTES", 2000)
    assert read_idx(tmp_path / "x").shape == (2, 28, 28)


def test_idx_header_dimensions_cannot_overflow(tmp_path):
    header = bytes([0, 0, 8, 4]) + b"\xff\xff\xff\xff" * 4
    (tmp_path / "x").write_bytes(header + b"\0" * 100)
    with pytest.raises(UserError, match=r"x: truncated: header says \(4294967295, .* found 100"):
        read_idx(tmp_path / "x")
    (tmp_path / "x").write_bytes(bytes([0, 0, 8, 255]) + b"\0\0\0\1" * 255)
    with pytest.raises(UserError, match="IDX header says 255 dimensions"):
        read_idx(tmp_path / "x")
