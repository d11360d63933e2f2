"""Where dataset files come from: local folders, the cache, OS packages, the internet.

Lookup order (docs/data.md): `--data-dir` / `$TINYVISION_DATA`,
the user cache (`~/.cache/tinyvision`), the folders where OS packages install datasets (Debian's
`dataset-*` packages put them under `/usr/share/datasets`), then a download from the
official sources, verified against the official md5 and moved atomically into the cache.
Each split is found on its own, so a folder holding only a test split is usable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tinyvision.errors import UserError
from tinyvision.records_read import kind_of

ENV_DATA = "TINYVISION_DATA"
ENV_OFFLINE = "TINYVISION_OFFLINE"  # set to 1 to never try a download
SYSTEM_DIRS = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))
DOWNLOAD_TIMEOUT_S = 20


@dataclass(frozen=True)
class RemoteFile:
    name: str  # the official file name
    md5: str  # of the file as published
    mirrors: tuple[str, ...]  # base URLs, tried in order


@dataclass(frozen=True)
class DatasetFiles:
    """The official files of a file-backed dataset, per split."""

    name: str
    splits: dict[str, tuple[str, ...]]  # split -> file names (found under the dataset folder)
    remote: tuple[RemoteFile, ...]
    archive_dir: str | None = None  # for archives: the folder the archive unpacks to
    image_shape: tuple[int, ...] = (1, 28, 28)  # one image, as read_split gives it


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_IDX_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

FILE_DATASETS: dict[str, DatasetFiles] = {
    "mnist": DatasetFiles(
        "mnist",
        _IDX_SPLITS,
        (
            RemoteFile(
                "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", _MNIST_MIRRORS
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", _MNIST_MIRRORS
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", _MNIST_MIRRORS
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", _MNIST_MIRRORS
            ),
        ),
    ),
    "fashion-mnist": DatasetFiles(
        "fashion-mnist",
        _IDX_SPLITS,
        (
            RemoteFile(
                "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", _FASHION_MIRRORS
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", _FASHION_MIRRORS
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", _FASHION_MIRRORS
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", _FASHION_MIRRORS
            ),
        ),
    ),
    "cifar10": DatasetFiles(
        "cifar10",
        {
            "train": tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
            "test": ("cifar-10-batches-py/test_batch",),
        },
        (
            RemoteFile(
                "cifar-10-python.tar.gz",
                "c58f30108f718f92721af3b95e74349a",
                ("https://www.cs.toronto.edu/~kriz/",),
            ),
        ),
        archive_dir="cifar-10-batches-py",
        image_shape=(3, 32, 32),
    ),
}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyvision"


def search_roots(data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """(kind, folder holding one subfolder per dataset), in lookup order."""
    roots: list[tuple[str, Path]] = []
    explicit = data_dir or os.environ.get(ENV_DATA)
    if explicit:
        roots.append(("data-dir", Path(explicit).expanduser()))
    roots.append(("cache", cache_dir()))
    roots += [("system", d) for d in SYSTEM_DIRS]
    return roots


def _existing(folder: Path, name: str) -> Path | None:
    """The file, accepting it gzipped or not whatever its official name says."""
    for candidate in (name, name.removesuffix(".gz"), name + ".gz"):
        path = folder / candidate
        if path.is_file():
            return path
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        # There, but a folder, a pipe or a device: say what it is ("not found" would
        # send the user looking for a file that is in its place).
        raise UserError(f"{path}: {kind_of(mode)}, not a plain file; put the real file there")
    return None


def find_split(name: str, split: str, data_dir: str | Path | None = None) -> list[Path] | None:
    """The files of one split from the first root that has all of them, else None."""
    spec = FILE_DATASETS[name]
    for _, root in search_roots(data_dir):
        folder = root / name
        paths = [_existing(folder, f) for f in spec.splits[split]]
        if all(paths):
            return paths  # type: ignore[return-value]
        if spec.archive_dir:  # also accept the batch files directly in the dataset folder
            flat = [_existing(folder, Path(f).name) for f in spec.splits[split]]
            if all(flat):
                return flat  # type: ignore[return-value]
    return None


def incomplete_split(
    name: str, split: str, data_dir: str | Path | None = None
) -> tuple[Path, list[str]] | None:
    """The first folder holding some of a split's files but not all: (folder, missing)."""
    spec = FILE_DATASETS[name]
    for _, root in search_roots(data_dir):
        folder = root / name
        layouts = [list(spec.splits[split])]
        if spec.archive_dir:
            layouts.append([Path(f).name for f in spec.splits[split]])
        for names in layouts:
            found = [f for f in names if _existing(folder, f)]
            if found and len(found) < len(names):
                missing = [Path(f).name for f in names if f not in found]
                return folder / Path(names[0]).parent, missing
    return None


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def where_to_put(name: str, split: str, data_dir: str | Path | None = None) -> str:
    spec = FILE_DATASETS[name]
    root = search_roots(data_dir)[0][1]
    files = ", ".join(Path(f).name for f in spec.splits[split])
    return f"put {files} in {root / name}/ (or set {ENV_DATA} to a folder holding {name}/)"


def _download_one(url: str, target: Path, md5: str, quiet: bool) -> None:
    """Download to a temporary file beside the target, check md5, then rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r,
        ):
            total = int(r.headers.get("Content-Length") or 0)
            _copy_with_progress(r, out, total, target.name, quiet)
        got = md5sum(tmp)
        if got != md5:
            raise UserError(f"{url}: checksum mismatch (md5 {got}, expected {md5}); try again")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_with_progress(src, dst, total: int, label: str, quiet: bool) -> None:
    if quiet:
        shutil.copyfileobj(src, dst, 1 << 20)
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(label, total=total or None)
        for chunk in iter(lambda: src.read(1 << 16), b""):
            dst.write(chunk)
            progress.advance(task, len(chunk))


class NotDownloaded(UserError):
    """A download that could not reach any mirror (no network, or downloads disabled).
    The message has every mirror's error; `short` is what a summary says of it."""

    short = "not downloaded (offline)"


def download(name: str, quiet: bool = False) -> Path:
    """Fetch every official file of a dataset into the cache; returns the dataset folder."""
    spec = FILE_DATASETS[name]
    folder = cache_dir() / name
    if os.environ.get(ENV_OFFLINE) == "1":
        raise NotDownloaded(f"{name}: downloads are disabled ({ENV_OFFLINE}=1)")
    for remote in spec.remote:
        target = folder / remote.name
        if target.is_file() and md5sum(target) == remote.md5:
            continue
        errors = []
        for base in remote.mirrors:
            try:
                _download_one(base + remote.name, target, remote.md5, quiet)
                break
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                errors.append(f"{base}: {getattr(e, 'reason', e)}")
        else:
            raise NotDownloaded(f"could not download {remote.name} ({'; '.join(errors)})")
    if spec.archive_dir:
        _extract(folder / spec.remote[0].name, folder, spec.archive_dir)
    return folder


def _extract(archive: Path, folder: Path, inner: str) -> None:
    """Unpack into a temporary folder, then move the result into place in one rename."""
    if (folder / inner).is_dir():
        return
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".extract."))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        os.replace(tmp / inner, folder / inner)
    except (tarfile.TarError, OSError) as e:
        raise UserError(f"{archive}: cannot unpack ({e}); delete it and fetch again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def locate_split(
    name: str, split: str, data_dir: str | Path | None = None, allow_download: bool = True
) -> list[Path]:
    paths = find_split(name, split, data_dir)
    if paths is None and allow_download:
        try:
            download(name)
        except UserError as e:
            raise UserError(
                f"{name} {split} split not found locally, and {e}; "
                + where_to_put(name, split, data_dir)
            ) from None
        paths = find_split(name, split, data_dir)
    if paths is None:
        raise UserError(f"{name} {split} split not found; {where_to_put(name, split, data_dir)}")
    return paths
