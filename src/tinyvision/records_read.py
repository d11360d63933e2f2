"""Reading records someone else may have written: run folders, sweeps, pictures.

A shared `runs/` folder is untrusted input. Every file is read through one door: a
plain file (not a symbolic link, a pipe or a device), of bounded size, decoded and
parsed with every failure turned into a `RecordError` that names the file and says
what is wrong with it in one line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from tinyvision.errors import UserError

MAX_RECORD_BYTES = 20 * 1024 * 1024  # far above any real summary.json or metrics.csv
MAX_PICTURE_BYTES = 20 * 1024 * 1024
MAX_PICTURE_PIXELS = 40_000_000  # a browser must be able to decode every embedded picture
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GIF_MAGICS = (b"GIF87a", b"GIF89a")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class RecordError(UserError):
    """A record file that cannot be used; the message is `<file>: <what is wrong>`."""


def read_bytes(path: Path, limit: int = MAX_RECORD_BYTES) -> bytes:
    """The bytes of a plain file, never following a symbolic link or blocking on a pipe."""
    try:  # the type first: a folder, a pipe or a device is named, never opened as a file
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise RecordError(f"{path}: missing") from None
    except OSError as e:
        raise RecordError(f"{path}: cannot be read ({e.strerror})") from None
    if stat.S_ISLNK(mode):
        raise RecordError(f"{path}: a symbolic link; records must be plain files")
    if not stat.S_ISREG(mode):
        raise RecordError(f"{path}: not a plain file ({kind_of(mode)})")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:  # and again on what was opened: it may have been swapped in between
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise RecordError(f"{path}: missing") from None
    except OSError as e:
        if os.path.islink(path):
            raise RecordError(f"{path}: a symbolic link; records must be plain files") from None
        raise RecordError(f"{path}: cannot be read ({e.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RecordError(f"{path}: not a plain file ({kind_of(info.st_mode)})")
    with os.fdopen(fd, "rb") as f:
        if info.st_size > limit:
            raise RecordError(f"{path}: {info.st_size:,} bytes, more than the {limit:,} allowed")
        data = f.read(limit + 1)  # a file that grows while we read is still bounded
    if len(data) > limit:
        raise RecordError(f"{path}: more than the {limit:,} bytes allowed")
    return data


def kind_of(mode: int) -> str:
    """What a file that is not a plain file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a special file"


def read_text(path: Path) -> str:
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{path}: not UTF-8 text (a binary or damaged file)") from None


def read_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except (ValueError, RecursionError) as e:  # 5,000-digit numbers, [[[[... nesting
        raise RecordError(f"{path}: not usable JSON ({type(e).__name__})") from None


def read_json_object(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object {{...}}, found {_json_kind(data)}")
    return data


def _json_kind(value: Any) -> str:
    kinds = {list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "a number")


def read_csv_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV file whose header holds `required`; a cut or ragged row is an error."""
    text = read_text(path)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        rows = list(reader)
    except csv.Error as e:
        raise RecordError(f"{path}: not valid CSV ({e})") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise RecordError(f"{path}: the header lacks the columns {', '.join(missing)}")
    for number, row in enumerate(rows, start=2):
        if None in row:
            raise RecordError(f"{path}: line {number} has more fields than the header")
        if None in row.values():
            raise RecordError(f"{path}: line {number} has fewer fields than the header (cut?)")
    return rows


def number(path: Path, line: int, row: dict[str, str], column: str) -> float | None:
    """A CSV cell as a number; empty is None, anything else that is not a number an error."""
    cell = row[column].strip()
    if not cell:
        return None
    try:
        return float(cell)
    except ValueError:
        shown = printable(cell)[:40]
        raise RecordError(f"{path}: line {line}: {column} {shown!r} is not a number") from None


def read_picture(path: Path, folder: Path) -> tuple[bytes, str]:
    """A PNG or GIF inside `folder`, its bytes checked: (bytes, MIME type)."""
    data = read_bytes(path, MAX_PICTURE_BYTES)  # no links: a link is refused, never followed
    try:  # and no way out through a linked folder on the way to it either
        inside = path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise RecordError(f"{path}: outside its folder {folder}")
    if data.startswith(PNG_MAGIC):
        mime = "image/png"
    elif data.startswith(GIF_MAGICS):
        mime = "image/gif"
    else:
        raise RecordError(f"{path}: not a PNG or GIF picture")
    _check_picture_header(path, data)
    return data, mime


def _check_picture_header(path: Path, data: bytes) -> None:
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():  # PIL's own size warning: we say it ourselves below
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                image.verify()  # checksums (PNG), structure (GIF), without decoding pixels
    except Exception as e:  # PIL raises many types for damaged files; all mean "unreadable"
        raise RecordError(f"{path}: a damaged picture ({type(e).__name__})") from None
    if width * height > MAX_PICTURE_PIXELS:
        raise RecordError(f"{path}: {width}x{height} pixels, too large to embed")


def printable(value: Any) -> str:
    """`value` as text with control characters (terminal escapes, newlines) made visible."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def trained_rows(rows: list[dict]) -> list[dict]:
    """The metrics rows of trained epochs: all but epoch 0, the evaluation of the weights
    before the first step (a row of metrics.csv, never an epoch run). A row whose epoch
    is not a number is left out too."""
    kept = []
    for row in rows:
        try:
            if float(row["epoch"]) >= 1:
                kept.append(row)
        except (KeyError, TypeError, ValueError):
            continue
    return kept
