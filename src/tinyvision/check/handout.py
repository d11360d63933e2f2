"""`tinyvision exercises [DIR]`: the exercise notebooks, copied out of the package."""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

from tinyvision.errors import UserError

NAMES = ("1ab-mlp.ipynb", "1cd-cnn.ipynb", "1e-vit.ipynb")


def exercise_text(name: str) -> str:
    return resources.files("tinyvision.check").joinpath("exercises", name).read_text("utf-8")


def copy_exercises(folder: Path) -> list[Path]:
    """Write the exercise notebooks into `folder`; never over a file, never through a link."""
    if folder.is_symlink():
        raise UserError(f"{folder} is a symbolic link: give a real folder")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is not a folder")
    targets = [folder / name for name in NAMES]
    taken = [t for t in targets if t.exists() or t.is_symlink()]
    if taken:
        raise UserError(
            f"{taken[0]} already exists: tinyvision exercises never overwrites a notebook "
            f"(choose another folder, or move your own work away first)"
        )
    texts = [exercise_text(name) for name in NAMES]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for target, text in zip(targets, texts):
            _write_new(target, text)
            written.append(target)
    except FileExistsError as e:  # created meanwhile: leave it, and undo ours
        for path in written:
            path.unlink(missing_ok=True)
        raise UserError(f"{e.filename} appeared while writing: nothing was written") from None
    return written


def _write_new(target: Path, text: str) -> None:
    """Write beside the target, then link it into place: never replaces what is there."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, target)  # fails if the name exists, a link included
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: create the name exclusively
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(target, flags, 0o644), "w", encoding="utf-8") as f:
                f.write(text)
    finally:
        os.unlink(tmp)
