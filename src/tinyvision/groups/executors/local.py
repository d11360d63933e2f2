"""Points of a sweep in worker processes, `--jobs` at a time, that stop when asked.

One process per point (spawned, so each starts clean and its memory is returned when
it ends). A pool such as `ProcessPoolExecutor` hands a worker its next point before the
current one ends, and a worker that was interrupted would start it; here the parent
starts a point only while nothing asked to stop. On Ctrl-C or SIGTERM the parent sends
SIGINT to its workers, which record their runs as `interrupted` (resumable), gives them
a few seconds, then terminates what is left. A worker whose parent disappears
(`kill -9` of the sweep) notices within a second and interrupts itself the same way.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import get_context, resource_tracker
from multiprocessing.connection import wait
from typing import TYPE_CHECKING

from tinyvision.errors import UserError
from tinyvision.experiment.folder import read_summary

if TYPE_CHECKING:
    from tinyvision.groups.points import Options, Point, PointRunner


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
GRACE_SECONDS = 15.0  # for interrupted workers to record their runs before termination


def _watch_parent(parent: int) -> None:
    """Interrupt this worker if the process that started it is gone."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            _thread.interrupt_main()
            time.sleep(GRACE_SECONDS)
            os._exit(130)


def _interrupt_once(signum, frame) -> None:
    """The first SIGINT or SIGTERM interrupts; later ones must not cut the recording short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _worker(
    run_point: PointRunner,
    point: Point,
    options: Options,
    group: str,
    threads: int,
    parent: int,
    conn,
) -> None:
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        import torch

        from tinyvision.experiment import runner  # noqa: F401  (imported while signals wait)

        torch.set_num_threads(threads)
        # Started with SIGINT and SIGTERM blocked (_stop_signals_held): a signal that came while
        # Python imported the modules, where KeyboardInterrupt can land in a callback
        # that swallows it with a traceback, is delivered here.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        run_point(point, options.out, options.device, group)
        _tell(conn, "ok")
    except KeyboardInterrupt:
        _tell(conn, "interrupted")
    except UserError as e:
        _tell(conn, "error", str(e))
    except BaseException as e:  # a bug: the parent reports it with the point's name
        _tell(conn, "bug", f"{type(e).__name__}: {e}")
        raise
    finally:
        conn.close()


def _tell(conn, outcome: str, message: str = "") -> None:
    """Send the outcome to the sweep; if the sweep is gone, there is nobody to tell."""
    with contextlib.suppress(OSError):
        conn.send((outcome, message))


def run_locally(
    run_point: PointRunner,
    todo: list[Point],
    options: Options,
    group: str,
    report: Callable[[Point, dict], None],
) -> None:
    """The `local` executor: `--jobs 1` in this process, one point after the other; more
    in that many worker processes."""
    if options.jobs == 1:
        for point in todo:
            report(point, run_point(point, options.out, options.device, group))
        return
    ctx = get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // options.jobs)
    queue = list(todo)
    running: dict = {}  # sentinel -> (process, connection, point)
    try:
        while queue or running:
            while queue and len(running) < options.jobs:
                point = queue.pop(0)
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(
                    target=_worker,
                    args=(run_point, point, options, group, threads, os.getpid(), send),
                    name=f"tinyvision-{point.run_dir.name}",
                )
                with _stop_signals_held():  # a Ctrl-C now waits until it is on the list
                    process.start()
                    send.close()
                    running[process.sentinel] = (process, receive, point)
            for sentinel in wait(list(running), timeout=1.0):
                process, receive, point = running.pop(sentinel)
                process.join()
                outcome, message = receive.recv() if receive.poll() else ("bug", "no word")
                receive.close()
                if outcome == "error":
                    raise UserError(message)
                if outcome == "bug" or process.exitcode not in (0, None):
                    raise RuntimeError(f"{point.run_dir}: the worker failed ({message})")
                report(point, read_summary(point.run_dir) or {"status": outcome})
    except BaseException:
        _stop([process for process, _, _ in running.values()])
        raise


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait while a worker is started: it inherits the block, and lifts
    it once its imports are done (see _worker); here they wait the milliseconds of a
    fork, so that the worker is on the list that _stop interrupts."""
    # The first start launches multiprocessing's resource tracker, which unblocks both
    # signals behind it: launched before the block, it cannot undo it.
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop(processes: list) -> None:
    """SIGINT every worker, wait for them to record their runs, then make sure."""
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGINT)
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(2)
        if process.is_alive():
            process.kill()
            process.join()
    sys.stderr.flush()
