"""What a run prints while it trains: a live bar on a terminal or in a Jupyter notebook,
one line per epoch anywhere else (a log file, CI)."""

from __future__ import annotations

import html
import math
import sys
import time

from tinyvision.train.metrics import Accumulator

REFRESH_SECONDS = 0.5  # the live loss costs one host sync per refresh, never per batch


def _test_part(row: dict) -> str:
    if math.isnan(row["test_loss"]):  # the test pass was skipped (train.eval_every)
        return "test not evaluated".ljust(len("test loss 0.0000 acc 100.00%"))
    return f"test loss {row['test_loss']:.4f} acc {row['test_acc']:6.2f}%"


def in_notebook() -> bool:
    """Running in a Jupyter kernel (not a terminal IPython, not a plain interpreter)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class NotebookBar:
    """One cell output per epoch, updated in place: an HTML progress bar, then the epoch's
    line. Plain IPython display updates: no widget library needed. Only numbers made
    here go into the HTML."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.handle = None
        self.batches = 1

    @staticmethod
    def _html(text: str, done: int | None = None, total: int = 1) -> object:
        from IPython.display import HTML

        bar = "" if done is None else f"<progress value='{done}' max='{total}'></progress> "
        return HTML(f"<pre style='margin:0'>{bar}{html.escape(text)}</pre>")

    def start(self, index: int, batches: int) -> None:
        from IPython.display import display

        self.index, self.batches = index, max(1, batches)
        self.handle = display(self._bar(0, ""), display_id=True)

    def _bar(self, done: int, stats: str):
        label = f"epoch {self.index + 1}/{self.epochs} {done}/{self.batches} {stats}"
        return self._html(label, done, self.batches)

    def update(self, done: int, stats: str) -> None:
        if self.handle is not None:
            self.handle.update(self._bar(done, stats))

    def end(self, line: str) -> None:
        if self.handle is not None:
            self.handle.update(self._html(line))
            self.handle = None


class EpochProgress:
    def __init__(self, epochs: int, quiet: bool = False, stream=None):
        self.epochs = epochs
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.notebook = (
            NotebookBar(epochs) if not quiet and stream is None and in_notebook() else None
        )
        self.live = not quiet and self.notebook is None and self.stream.isatty()
        self._progress = None
        self._task = None
        self._last = 0.0
        self._done = 0

    def set_total(self, epochs: int) -> None:
        """The run's epoch count changed on the way (a time budget planned again)."""
        self.epochs = epochs
        if self.notebook is not None:
            self.notebook.epochs = epochs

    def note(self, line: str) -> None:
        """A line of its own between epochs (e.g. how a time budget sized the run)."""
        if not self.quiet:
            print(line, file=self.stream, flush=True)

    def start(self, index: int, batches: int) -> None:
        if self.notebook is not None:
            self.notebook.start(index, batches)
            self._done, self._last = 0, time.monotonic()
            return
        if not self.live:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[bold]epoch {task.fields[epoch]}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            "{task.fields[stats]}",
            console=Console(file=self.stream),
            transient=True,
        )
        self._progress.start()
        label = f"{index + 1}/{self.epochs}"
        self._task = self._progress.add_task("", total=batches, epoch=label, stats="")
        self._last = time.monotonic()

    def advance(self, acc: Accumulator) -> None:
        if self.notebook is not None:
            self._done += 1
            now = time.monotonic()
            if now - self._last > REFRESH_SECONDS:
                m = acc.read()
                self.notebook.update(self._done, f"loss {m['loss']:.4f}  acc {m['acc']:.2f}%")
                self._last = now
            return
        if self._progress is None:
            return
        now = time.monotonic()
        stats = None
        if now - self._last > REFRESH_SECONDS:
            m = acc.read()
            stats = f"loss {m['loss']:.4f}  acc {m['acc']:.2f}%"
            self._last = now
        if stats is None:
            self._progress.advance(self._task)
        else:
            self._progress.update(self._task, advance=1, stats=stats)

    def end(self, row: dict) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.quiet:
            return
        line = (
            f"epoch {row['epoch']:>3}/{self.epochs}  "
            f"train loss {row['train_loss']:.4f} acc {row['train_acc']:6.2f}%  "
            f"{_test_part(row)}  "
            f"lr {row['lr']:.4g}  {row['epoch_seconds']:.1f}s  "
            f"{row['images_per_second']:.0f} img/s"
        )
        if self.notebook is not None:
            self.notebook.end(line)
        else:
            print(line, file=self.stream, flush=True)
