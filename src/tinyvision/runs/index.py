"""`DIR/index.sqlite`: one row per run under DIR, safe with several writers at once.

SQLite in WAL mode with a generous busy timeout serialises concurrent writers (sweep
workers) without losing rows; every write is one short transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

INDEX_NAME = "index.sqlite"
COLUMNS = (
    "run_id", "path", "preset", "status", "dataset", "model", "epochs", "epochs_done",
    "best_test_acc", "best_epoch", "final_test_acc", "final_train_acc", "params", "seconds",
    "device", "seed", "sweep", "created", "updated", "config",
)  # fmt: skip
SCHEMA = "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, " + ", ".join(COLUMNS[1:]) + ")"


def _connect(root: Path) -> sqlite3.Connection:
    root.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(root / INDEX_NAME, timeout=60)
    for attempt in range(50):  # switching to WAL needs a moment alone with the file
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(SCHEMA)
            conn.commit()
            break
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    return conn


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
    finally:
        conn.close()


def rows(root: Path, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
    if not (root / INDEX_NAME).is_file():
        return []
    conn = _connect(root)
    conn.row_factory = sqlite3.Row
    try:
        query = "SELECT * FROM runs " + (f"WHERE {where} " if where else "") + "ORDER BY created"
        return [dict(r) for r in conn.execute(query, params)]
    finally:
        conn.close()
