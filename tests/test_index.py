"""The SQLite index keeps every row with several writers at once; a damaged one is one line."""

from __future__ import annotations

from multiprocessing import get_context

import pytest

from tinyvision.errors import UserError
from tinyvision.experiment import index


def _writer(root, worker: int) -> None:
    for i in range(25):
        index.upsert(root, {"run_id": f"w{worker}-{i}", "status": "running", "epochs": 1})
        index.upsert(root, {"run_id": f"w{worker}-{i}", "status": "completed", "epochs": 1})


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = index.rows(tmp_path)
    assert len(rows) == 100 and {r["status"] for r in rows} == {"completed"}


def test_reading_a_damaged_index_is_a_user_error(tmp_path):
    assert index.rows(tmp_path) == [], "no index yet: no runs"
    (tmp_path / index.INDEX_NAME).write_bytes(b"")
    assert index.rows(tmp_path) == [], "an index a writer created but never filled"
    (tmp_path / index.INDEX_NAME).write_bytes(b"SQLite format 3\x00" + bytes(200))
    with pytest.raises(UserError, match="not a readable run index .*delete it"):
        index.rows(tmp_path)
    (tmp_path / index.INDEX_NAME).unlink()
    (tmp_path / index.INDEX_NAME).mkdir()
    with pytest.raises(UserError, match="not a plain file"):
        index.rows(tmp_path)
