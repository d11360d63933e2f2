"""What a sweep, study or search shows while its runs go: no minutes of silence.

A line when each run starts and when it ends, whichever executor runs it: the runs' own
processes may be local workers or Ray tasks on other machines, so a run is seen to start
when its run folder's lock is taken (`is_alive`: the same check `runs ls` uses, through
the shared `--out` on a cluster), polled here every POLL_SECONDS. On a terminal, a live
table of the runs (queued, running, how each ended) stays below the lines; elsewhere (a
log file, a notebook's captured output, a CI job) the plain lines only.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tinyvision.experiment.folder import is_alive

POLL_SECONDS = 0.5
MAX_ROWS = 12  # rows of the live table; a larger group shows its running and latest runs

# Who else wants to know when a run starts (the tour's progress): called with the run's
# name, in the process that drives the group, quiet or not.
_listeners: list[Callable[[str], None]] = []


@contextlib.contextmanager
def listening(callback: Callable[[str], None]) -> Iterator[None]:
    """Call `callback(name)` as each run of the groups run meanwhile starts."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


class GroupProgress:
    """The runs of one group: `name -> run folder`, in the order they will run."""

    def __init__(self, runs: dict[str, Path], quiet: bool = False, stream=None) -> None:
        self.runs = dict(runs)
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.state = {name: "queued" for name in self.runs}
        self.started_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._live = None

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> GroupProgress:
        if (self.quiet and not _listeners) or not self.runs:
            return self
        if not self.quiet and self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._table(), console=Console(file=self.stream), auto_refresh=False)
            self._live.start()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        if self._live is not None:
            self._live.stop()

    # --- events --------------------------------------------------------------------------

    def started(self, name: str) -> None:
        with self._lock:
            if self.state.get(name) != "queued":
                return
            self.state[name] = "running"
            self.started_at[name] = time.monotonic()
            running = sum(s == "running" for s in self.state.values())
            self._say(f"  started {name} ({running} running, {self._queued()} queued)")
        for listener in list(_listeners):
            listener(name)

    def ended(self, name: str, line: str, status: str) -> None:
        """`line`: what the caller says of the run's end (its status, test accuracy)."""
        self.started(name)  # a run that ended between two looks was running too
        with self._lock:
            self.state[name] = status or "ended"
            self._say(line)

    def _queued(self) -> int:
        return sum(s == "queued" for s in self.state.values())

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            for name, path in self.runs.items():
                if self.state.get(name) == "queued" and is_alive(path):
                    self.started(name)

    # --- output --------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        if self.quiet:
            return
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
            self._live.update(self._table(), refresh=True)
        else:
            print(line, file=self.stream, flush=True)

    def _table(self):
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("run")
        table.add_column("state")
        table.add_column("for", justify="right")
        now = time.monotonic()
        shown = list(self.state.items())
        if len(shown) > MAX_ROWS:  # the running first, then the latest ended, then a count
            running = [(n, s) for n, s in shown if s == "running"]
            ended = [(n, s) for n, s in shown if s not in ("running", "queued")]
            shown = running + ended[-max(0, MAX_ROWS - len(running)) :]
        for name, state in shown:
            since = self.started_at.get(name)
            took = f"{now - since:.0f}s" if state == "running" and since else ""
            table.add_row(name, state, took)
        hidden = len(self.state) - len(shown)
        if hidden:
            table.add_row(f"... {hidden} more ({self._queued()} queued)", "", "")
        return table
