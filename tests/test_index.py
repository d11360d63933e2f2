"""The SQLite index keeps every row when several processes write at once."""

from __future__ import annotations

from multiprocessing import get_context

from tinyvision.runs import index


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
