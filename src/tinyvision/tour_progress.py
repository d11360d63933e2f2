"""What `tinyvision tour` shows while it works: each step as it starts, and the time left.

The tour knows its steps before it starts (each practical's runs, then the report), so
each is announced with its place, `1-cd step 3/6: + augment`, and a bar for the whole
tour estimates the time left: the seconds spent so far over the work done, times the
work left, where a step's work is its share of the tour's estimated cost (its epochs
times its training images times its model's cost per image, from the tour's budgets).
On a terminal the bar is a live line below the steps; elsewhere each step's line ends
with the same estimate.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass


@dataclass
class Step:
    part: str  # 1-ab, 1-cd, 1-e, report
    name: str  # what the step does, in the course's words
    work: float  # its estimated cost, in any unit shared by the tour's steps


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class TourProgress:
    def __init__(self, steps: list[Step], stream=None, clock=time.monotonic) -> None:
        self.steps = steps
        self.clock = clock
        self.stream = stream or sys.stdout
        self.total = sum(s.work for s in steps) or 1.0
        self.current: int | None = None  # index of the step under way
        self.begin = clock()
        self._lock = threading.Lock()
        self._bar = None
        self._task = None
        # (part, a study's step label) -> the step's name here, e.g. augment -> + augment
        self.study_names: dict[tuple[str, str], str] = {}

    def __enter__(self) -> TourProgress:
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("[bold]tour"),
                BarColumn(),
                TextColumn("{task.fields[left]}"),
                console=Console(file=self.stream),
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total, left="")
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def done_work(self) -> float:
        return sum(s.work for s in self.steps[: self.current or 0])

    def time_left(self) -> str:
        """About how long the rest takes, at the pace of the steps done so far."""
        done = self.done_work()
        if done <= 0:
            return "time left: estimated after the first step"
        seconds = (self.clock() - self.begin) / done * (self.total - done)
        return f"about {duration(seconds)} left"

    def start(self, part: str, name: str) -> None:
        """The step named `name` of `part` starts (the one before it is done)."""
        with self._lock:
            later = range(self.current or 0, len(self.steps))  # steps run in order
            index = next(
                (i for i in later if (self.steps[i].part, self.steps[i].name) == (part, name)),
                None,
            )
            if index is None or index == self.current:
                return
            self.current = index
            mine = [s for s in self.steps if s.part == part]
            position = mine.index(self.steps[index]) + 1
            line = f"{part} step {position}/{len(mine)}: {name}"
            left = self.time_left()
            if self._bar is not None:
                self._bar.console.print(line, markup=False, highlight=False)
                self._bar.update(self._task, completed=self.done_work(), left=left)
                self._bar.refresh()
            else:
                done = f"{index}/{len(self.steps)} steps done"
                print(f"{line}  (tour: {done}, {left})", file=self.stream, flush=True)

    def study_step(self, part: str, run_name: str) -> None:
        """A study's run started: its name is `step=LABEL seed N`."""
        label = run_name.split(" seed ")[0].removeprefix("step=")
        self.start(part, self.study_names.get((part, label), label))

    def finish(self) -> None:
        with self._lock:
            self.current = len(self.steps)
            took = duration(self.clock() - self.begin)
            if self._bar is not None:
                self._bar.update(self._task, completed=self.total, left=f"done in {took}")
                self._bar.refresh()
            else:
                print(f"tour: done in {took}", file=self.stream, flush=True)
