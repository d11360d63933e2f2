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

import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tinyvision import io
from tinyvision.errors import UserError, first_line
from tinyvision.experiment.folder import LOCK, read_summary

if TYPE_CHECKING:
    from tinyvision.groups.points import Options, Point

INSTALL = "pip install 'tinyvision[ray]'"
RETRIES = 3  # a task whose worker died is started again this many times, then it fails
GRACE_SECONDS = 15.0  # for cancelled tasks to record their runs as interrupted
CONNECT_SECONDS = 10.0  # for the cluster's address to accept a connection
WAIT_NOTE_SECONDS = 30.0  # nothing ended for this long: say why runs wait
CHECK_SECONDS = 120.0  # for a worker to start and read the token (a cold node is slow)
# Settings a worker must share with the driver (the dataset folder, when set by the user's
# environment; --data-dir travels inside each point instead).
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


def check_cluster(options: Options) -> None:
    """Before a group's folder is made: the cluster answers and can hold a run."""
    check_resources(connect(options), options, threads_per_run(options))


def check_resources(ray, options: Options, threads: int) -> None:
    """Refuse, in one line, a run no node of the cluster could ever hold: Ray would queue
    its task forever. A task needs its CPUs and GPUs on one node."""
    cpus, gpus = threads, options.gpus_per_run
    nodes = [n.get("Resources") or {} for n in ray.nodes() if n.get("Alive")]
    if any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes):
        return
    largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
    flags = (
        "--gpus-per-run"
        if gpus and all(n.get("GPU", 0) < gpus for n in nodes)
        else ("--cpus-per-run")
    )
    raise UserError(
        f"each run asks for {cpus:g} CPUs and {gpus:g} GPUs on one node, and no node of the "
        f"Ray cluster has them (the largest has {largest.get('CPU', 0):g} CPUs, "
        f"{largest.get('GPU', 0):g} GPUs; {len(nodes)} nodes in all): lower {flags}"
    )


def pending_note(ray, waiting: int, cpus: float, gpus: float) -> str:
    """Why runs wait: what each asks for, beside what the cluster has free now."""
    free = ray.available_resources()
    return (
        f"{waiting} runs waiting for room: each asks for {cpus:g} CPUs and {gpus:g} GPUs; "
        f"free now: {free.get('CPU', 0):g} CPUs, {free.get('GPU', 0):g} GPUs "
        "(others' tasks hold the rest; `ray status` shows them)"
    )


def record_interrupted(points: list[Point], out: Path) -> int:
    """Runs whose worker went down with the cluster: recorded `interrupted` in the index
    (a rerun resumes them), unless a process still holds the run's lock."""
    from tinyvision.experiment import index
    from tinyvision.experiment.folder import CONFIG, is_alive

    marked = 0
    for point in points:
        summary = read_summary(point.run_dir) or {}
        started = (point.run_dir / CONFIG).is_file() and not point.run_dir.is_symlink()
        if started and summary.get("status") in (None, "running") and not is_alive(point.run_dir):
            try:
                index.set_status(out, point.run_dir.relative_to(out).as_posix(), "interrupted")
            except (OSError, UserError, ValueError):
                continue
            marked += 1
    return marked


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


RAY_LOG = "ray.log"
# How often the driver looks at its runs' locks: a retried worker takes its run's lock
# again within a few seconds of the death (a new process importing torch).
WATCH_SECONDS = 0.25


@contextlib.contextmanager
def ray_output_in(path: Path) -> Iterator[None]:
    """Ray's own messages (its notices, a dead worker's traceback) go to a file in the
    group's folder, not the terminal: this process's stderr points there while Ray works.
    tinyvision's own lines are on stdout, and its errors are printed after Ray is done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def _holder(run_dir: Path) -> int | None:
    """The pid that last took a run's lock (alive or not, as the lock file says), or None."""
    try:
        return int(json.loads((run_dir / LOCK).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class RetryWatch:
    """A line when Ray starts a point again because its worker died: the run's lock was
    taken by another process while the run was unfinished (no final summary). The holder
    an earlier sweep left is noted first, so a resumed run's first start is not a retry."""

    def __init__(self, points: list[Point], say: Callable[[str], None]) -> None:
        self.say = say
        self.holders = {p.run_dir: _holder(p.run_dir) for p in points}
        self.started: set[Path] = set()
        self.retries: dict[Path, int] = {}

    def look(self, points: list[Point]) -> None:
        for point in points:
            now, before = _holder(point.run_dir), self.holders.get(point.run_dir)
            if now is None or now == before:
                continue
            self.holders[point.run_dir] = now
            if point.run_dir not in self.started:
                self.started.add(point.run_dir)
                continue
            if (read_summary(point.run_dir) or {}).get("status") not in (None, "running"):
                continue
            self.retries[point.run_dir] = count = self.retries.get(point.run_dir, 0) + 1
            self.say(
                f"  {point.label} seed {point.seed}: its Ray worker died; Ray starts it "
                f"again (retry {count} of {RETRIES}), from its last checkpoint"
            )


def run_in_ray(
    run_point: Callable,
    todo: list[Point],
    options: Options,
    group: str,
    report: Callable[[Point, dict], None],
) -> None:
    with ray_output_in(options.out.resolve() / group / RAY_LOG):
        _run_in_ray(run_point, todo, options, group, report)


def _run_in_ray(
    run_point: Callable,
    todo: list[Point],
    options: Options,
    group: str,
    report: Callable[[Point, dict], None],
) -> None:
    ray = connect(options)
    out = options.out.resolve()
    threads = threads_per_run(options)
    check_resources(ray, options, threads)  # before anything is written or submitted
    check_shared_out(ray, out)
    check_data(todo)
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
    quiet_since, said = time.monotonic(), False
    watch = RetryWatch(
        todo, (lambda line: None) if options.quiet else (lambda line: print(line, flush=True))
    )
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=WATCH_SECONDS)
            watch.look(list(pending.values()))
            if not done and not said and time.monotonic() - quiet_since > WAIT_NOTE_SECONDS:
                waiting = sum(
                    1 for p in pending.values() if not (p.run_dir / "config.json").exists()
                )
                if waiting and not options.quiet:
                    print(pending_note(ray, waiting, threads, options.gpus_per_run), flush=True)
                said = True
            for ref in done:
                quiet_since = time.monotonic()
                point = pending.pop(ref)
                try:
                    outcome, message = ray.get(ref)
                except _cluster_lost(ray):
                    raise
                except ray.exceptions.RayError as e:
                    reason = (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]
                    raise UserError(
                        f"{point.run_dir}: the Ray task failed after {RETRIES} retries ({reason}); "
                        "run the same command again to resume it"
                    ) from None
                if outcome == "error":
                    raise UserError(message)
                report(point, read_summary(point.run_dir) or {"status": outcome})
    except _cluster_lost(ray) as e:
        marked = record_interrupted(list(pending.values()), out)
        raise UserError(
            f"the Ray cluster went away ({type(e).__name__}); {marked} runs recorded "
            "interrupted: run the same command again to resume them"
        ) from None
    except BaseException:
        _cancel(ray, list(pending))
        raise


def _cluster_lost(ray) -> tuple[type[BaseException], ...]:
    """What Ray raises when this machine's raylet (or the cluster) is gone."""
    names = ("LocalRayletDiedError", "RaySystemError", "RayletDiedError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


def _cancel(ray, refs: list) -> None:
    """Interrupt running tasks (KeyboardInterrupt in the worker) and drop queued ones."""
    for ref in refs:
        ray.cancel(ref)
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=GRACE_SECONDS)
