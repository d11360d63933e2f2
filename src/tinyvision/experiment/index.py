"""`DIR/index.sqlite`: one row per run under DIR, safe with several writers at once.

SQLite in WAL mode with a generous busy timeout serialises concurrent writers (sweep
workers) without losing rows; every write is one short transaction. Reading writes
nothing (the index may be someone else's, on a read-only or full disk) and a damaged
index is a one-line error, never a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

from tinyvision.errors import UserError

INDEX_NAME = "index.sqlite"
COLUMNS = (
    "run_id",
    "path",
    "preset",
    "status",
    "dataset",
    "model",
    "epochs",
    "epochs_done",
    "best_test_acc",
    "best_epoch",
    "final_test_acc",
    "final_train_acc",
    "params",
    "seconds",
    "device",
    "seed",
    "sweep",
    "created",
    "updated",
    "config",
)
SCHEMA = "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, " + ", ".join(COLUMNS[1:]) + ")"


# The files SQLite opens beside the index: each must be a plain file or absent, as the
# index itself (a link there would have SQLite write into whatever it points at).
SIDE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def check_plain(root: Path) -> None:
    """Refuse an index (or one of its side files) that is a link or not a plain file.

    SQLite follows links when it opens a database: a planted `index.sqlite` link would
    have every run write its rows, and switch to WAL, the file it points to."""
    for suffix in SIDE_SUFFIXES:
        path = root / f"{INDEX_NAME}{suffix}"
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise UserError(f"{path}: cannot be examined ({e.strerror})") from None
        if stat.S_ISLNK(info.st_mode):
            raise UserError(
                f"{path}: a symbolic link; the run index must be a plain file (links are "
                "never written through): remove the link, or choose another --out"
            )
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path}: not a plain file; remove it, or choose another --out")


def _connect(root: Path) -> sqlite3.Connection:
    root.mkdir(parents=True, exist_ok=True)
    check_plain(root)
    conn = sqlite3.connect(root / INDEX_NAME, timeout=60)
    try:
        for attempt in range(50):  # switching to WAL needs a moment alone with the file
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(SCHEMA)
                conn.commit()
                break
            except sqlite3.OperationalError as e:
                if attempt == 49 or "locked" not in str(e):
                    raise
                time.sleep(0.1)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise _write_error(root, e) from None
    return conn


def _write_error(root: Path, e: sqlite3.DatabaseError) -> Exception:
    """A full disk stays an OSError (the run is then `interrupted`, resumable); a damaged
    index is one line saying how to get going again."""
    if "full" in str(e):
        return OSError(errno.ENOSPC, f"no space left for {root / INDEX_NAME}")
    if "readonly" in str(e) or "read-only" in str(e) or not os.access(root, os.W_OK):
        # the index may be perfectly good: advice to delete it would destroy it
        return UserError(
            f"{root}: read-only here, so the run index cannot take a row ({e}); "
            "choose a writable --out"
        )
    return UserError(
        f"{root / INDEX_NAME} is not a usable run index ({e}); move it away or delete it "
        "(the run folders are intact and stay readable), or choose another --out"
    )


def check_writable(root: Path) -> None:
    """Before a run starts: the index can take its row (else nothing is created)."""
    _connect(root).close()


def upsert(root: Path, row: dict[str, Any]) -> None:
    values = {c: row.get(c) for c in COLUMNS}
    if isinstance(values["config"], dict):
        values["config"] = json.dumps(values["config"])
    values["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
    names = ", ".join(COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    updates = ", ".join(f"{c}=excluded.{c}" for c in COLUMNS[1:] if c != "created")
    conn = _connect(root)
    try:
        with conn:
            conn.execute(
                f"INSERT INTO runs ({names}) VALUES ({marks}) "
                f"ON CONFLICT(run_id) DO UPDATE SET {updates}",
                [values[c] for c in COLUMNS],
            )
    except sqlite3.DatabaseError as e:
        raise _write_error(root, e) from None
    finally:
        conn.close()


def set_status(root: Path, run_id: str, status: str) -> None:
    """One run's status, the rest of its row as it was (a run another process left)."""
    conn = _connect(root)
    try:
        with conn:
            conn.execute(
                "UPDATE runs SET status=?, updated=? WHERE run_id=?",
                (status, time.strftime("%Y-%m-%d %H:%M:%S"), run_id),
            )
    except sqlite3.DatabaseError as e:
        raise _write_error(root, e) from None
    finally:
        conn.close()


def rows(root: Path, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
    """Every row, read without writing a byte: the folder may be read-only, or full."""
    path = root / INDEX_NAME
    if not os.path.lexists(path):
        return []
    try:
        info = path.lstat()
    except OSError as e:
        raise _unreadable(path, e.strerror or "cannot be examined") from None
    if not stat.S_ISREG(info.st_mode):
        raise _unreadable(path, "not a plain file")
    for suffix in SIDE_SUFFIXES[1:]:  # a linked -wal would be read (and -shm written)
        if os.path.islink(f"{path}{suffix}"):
            raise _unreadable(Path(f"{path}{suffix}"), "a symbolic link")
    if info.st_size == 0:  # created by a writer that stopped before its table: no runs yet
        return []
    query = "SELECT * FROM runs " + (f"WHERE {where} " if where else "") + "ORDER BY created"
    for attempt in range(3):  # a writer's checkpoint may be rewriting the file this instant
        try:
            return _read(path, query, params)
        except sqlite3.DatabaseError as e:
            if attempt == 2:
                raise _unreadable(path, str(e)) from None
            time.sleep(0.2)
    return []


def _read(path: Path, query: str, params: tuple) -> list[dict[str, Any]]:
    """Read-only, and never leaving -wal/-shm files behind.

    With no -wal file every committed row is in the main file: `immutable=1` reads it
    without locks or side files (a read-only connection would create both). A -wal file
    means a writer is at work (or crashed): `mode=ro` sees its rows through the existing
    side files; where even that cannot open (read-only folder), the main file still can.
    """
    uri = path.resolve().as_uri()
    modes = ["immutable=1"]
    if os.path.lexists(f"{path}-wal"):
        modes.insert(0, "mode=ro")
    for attempt, mode in enumerate(modes):
        try:
            conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=10)
            try:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute(query, params)]
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            if attempt == len(modes) - 1:
                raise
    return []


def _unreadable(path: Path, reason: str) -> UserError:
    return UserError(
        f"{path} is not a readable run index ({reason}); delete it (the run folders "
        "themselves are intact, and the next run starts a new index)"
    )
