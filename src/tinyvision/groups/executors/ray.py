"""Points of a sweep, study or search as Ray tasks: the same run code, on a cluster.

Each point is one Ray task calling the very `run_point` a local worker calls, so a point
run by Ray writes the same run folder, index row and checkpoints. What Ray adds:

- placement: a task asks for `--cpus-per-run` CPUs and `--gpus-per-run` GPUs (a fraction
  shares a GPU), and Ray starts it on whichever node has them free;
- retries: a worker process that dies (killed, out of memory, its node lost) has its
  task started again, and `run_point` then finds the run folder and resumes it from its
  last checkpoint instead of starting over;
- `--address` (or RAY_ADDRESS) joins a running cluster; without one a local instance is
  started, so the same command works on a laptop.

Run folders are written by the workers, so `--out` must be one folder every node sees
(a shared filesystem): that is checked with a token file before anything is submitted.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tinyvision import io
from tinyvision.errors import UserError, first_line
from tinyvision.experiment.folder import read_summary

if TYPE_CHECKING:
    from tinyvision.groups.points import Options, Point

INSTALL = "pip install 'tinyvision[ray]'"
RETRIES = 3  # a task whose worker died is started again this many times, then it fails
GRACE_SECONDS = 15.0  # for cancelled tasks to record their runs as interrupted
CONNECT_SECONDS = 10.0  # for the cluster's address to accept a connection
CHECK_SECONDS = 120.0  # for a worker to start and read the token (a cold node is slow)
# Settings a worker must share with the driver (`--data-dir` sets TINYVISION_DATA).
FORWARDED = ("TINYVISION_DATA", "TINYVISION_OFFLINE")


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(
            f"--executor ray needs Ray, which is not installed: {INSTALL} (or --executor local)"
        ) from None
    return ray


def connect(options: Options):
    """The Ray module, joined to the cluster at --address / RAY_ADDRESS, or to a local one."""
    ray = import_ray()
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address:
        check_reachable(address)
    if ray.is_initialized():  # a notebook or test session that started Ray itself
        return ray
    # Ray's core installs its own SIGTERM handler (log and die); ours records the runs
    # as interrupted first, as Ctrl-C does, so it is put back once Ray is up.
    on_term = signal.getsignal(signal.SIGTERM)
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        reason = first_line(e)
        raise UserError(
            f"cannot join {where} ({reason}); check `ray status` there, or leave out --address"
        ) from None
    finally:
        if threading.current_thread() is threading.main_thread() and on_term is not None:
            signal.signal(signal.SIGTERM, on_term)
    return ray


def check_reachable(address: str) -> None:
    """Ray retries an unreachable address for minutes; a TCP connection says it at once."""
    if address == "auto":  # Ray looks for a cluster started on this machine
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except ValueError:
        raise UserError(
            f"--address {address}: expected HOST:PORT, e.g. 10.0.0.1:6379 (what "
            "`ray start --head` printed)"
        ) from None
    except OSError as e:
        raise UserError(
            f"--address {address}: no Ray cluster answers there ({e.strerror or e}); start one "
            "with `ray start --head`, or leave out --address for a local instance"
        ) from None


def _read_token(path: str) -> str | None:
    """In a worker: what the driver wrote, or None if this node does not see the file."""
    try:
        return Path(path).read_text()
    except OSError:
        return None


def check_shared_out(ray, out: Path) -> None:
    """Stop, in one line, if a worker does not see the folder the driver writes into."""
    out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    path = out.resolve() / f".ray-check-{token[:8]}"
    io.write_text(path, token)
    try:
        task = ray.remote(_read_token).options(num_cpus=0, max_retries=0)
        seen = ray.get(task.remote(str(path)), timeout=CHECK_SECONDS)
    except ray.exceptions.GetTimeoutError:
        raise UserError(
            f"no Ray worker answered within {CHECK_SECONDS:.0f}s; check `ray status`"
        ) from None
    finally:
        path.unlink(missing_ok=True)
    if seen != token:
        raise UserError(
            f"--out {out}: the Ray workers do not see this folder; on a cluster --out must be "
            "a shared filesystem mounted at the same path on every node"
        )


def check_data(points: list[Point]) -> None:
    """Read every dataset the points use, once, here: one clear error, not N failed tasks."""
    from tinyvision.data.datasets import load_dataset

    seen = []
    for point in points:
        data = point.config().data
        if data not in seen:
            seen.append(data)
            load_dataset(data)


def _task(run_point, point: Point, out: Path, device: str, group: str, threads: int):
    """One point, in a Ray worker. A UserError comes back as a value, not a crash."""
    import torch

    torch.set_num_threads(threads)
    try:
        run_point(point, out, device, group)
        return "ok", ""
    except KeyboardInterrupt:  # ray.cancel: the run is recorded `interrupted`
        return "interrupted", ""
    except UserError as e:
        return "error", str(e)


def threads_per_run(options: Options) -> int:
    """--cpus-per-run, or this machine's cores shared by --jobs, as the local pool does."""
    return options.cpus_per_run or max(1, (os.cpu_count() or 1) // options.jobs)


def run_in_ray(
    run_point: Callable,
    todo: list[Point],
    options: Options,
    group: str,
    report: Callable[[Point, dict], None],
) -> None:
    ray = connect(options)
    out = options.out.resolve()
    check_shared_out(ray, out)
    check_data(todo)
    threads = threads_per_run(options)
    env = {k: os.environ[k] for k in FORWARDED if k in os.environ}
    task = ray.remote(_task).options(
        num_cpus=threads,
        num_gpus=options.gpus_per_run,
        max_retries=RETRIES,
        retry_exceptions=False,  # a bug or a bad input would only fail again
        runtime_env={"env_vars": env} if env else None,
    )
    for point in todo:  # a worker's working folder is not the driver's
        point.run_dir = point.run_dir.resolve()
    pending = {task.remote(run_point, p, out, options.device, group, threads): p for p in todo}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in done:
                point = pending.pop(ref)
                try:
                    outcome, message = ray.get(ref)
                except ray.exceptions.RayError as e:
                    reason = (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]
                    raise RuntimeError(f"{point.run_dir}: the Ray task failed ({reason})") from e
                if outcome == "error":
                    raise UserError(message)
                report(point, read_summary(point.run_dir) or {"status": outcome})
    except BaseException:
        _cancel(ray, list(pending))
        raise


def _cancel(ray, refs: list) -> None:
    """Interrupt running tasks (KeyboardInterrupt in the worker) and drop queued ones."""
    for ref in refs:
        ray.cancel(ref)
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=GRACE_SECONDS)
