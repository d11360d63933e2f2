"""How a run can stand, what each status means to a group of runs, and to the shell.

One table: the statuses a run folder's summary.json and the index record, which of them
are finished (a sweep, a study or a search skips such a run instead of running or
resuming it again) and the exit code `tinyvision run` and `resume` end with.
"""

from __future__ import annotations

from typing import NamedTuple


class Status(NamedTuple):
    finished: bool  # nothing left to do: a group does not run it again
    exit_code: int | None  # of `tinyvision run` / `resume` ending so; None: not an end


# fmt: off
STATUSES = {
    "running":     Status(finished=False, exit_code=None),  # or dead: nobody holds its lock
    "completed":   Status(finished=True, exit_code=0),
    "diverged":    Status(finished=True, exit_code=3),  # would diverge again if resumed
    "pruned":      Status(finished=True, exit_code=0),  # stopped by a search's pruner
    "interrupted": Status(finished=False, exit_code=130),  # Ctrl-C, SIGTERM, a full disk
    "failed":      Status(finished=False, exit_code=1),  # a bug; resumable once it is fixed
}
# fmt: on
FINISHED = frozenset(name for name, s in STATUSES.items() if s.finished)
EXIT_CODES = {name: s.exit_code for name, s in STATUSES.items() if s.exit_code is not None}


def exit_code(status: str | None) -> int:
    """The process's exit code for a run that ended with `status` (1: not a known end)."""
    return EXIT_CODES.get(status or "", 1)


def is_finished(summary: dict | None) -> bool:
    """Whether a run's summary says there is nothing left to run."""
    return bool(summary) and summary.get("status") in FINISHED
