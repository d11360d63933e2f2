"""What a run prints while it trains: a live bar on a terminal, one line per epoch else."""

from __future__ import annotations

import sys
import time

from tinyvision.train.metrics import Accumulator

REFRESH_SECONDS = 0.5  # the live loss costs one host sync per refresh, never per batch


class EpochProgress:
    def __init__(self, epochs: int, quiet: bool = False, stream=None):
        self.epochs = epochs
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.live = not quiet and self.stream.isatty()
        self._progress = None
        self._task = None
        self._last = 0.0

    def start(self, index: int, batches: int) -> None:
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
        print(
            f"epoch {row['epoch']:>3}/{self.epochs}  "
            f"train loss {row['train_loss']:.4f} acc {row['train_acc']:6.2f}%  "
            f"test loss {row['test_loss']:.4f} acc {row['test_acc']:6.2f}%  "
            f"lr {row['lr']:.4g}  {row['epoch_seconds']:.1f}s  "
            f"{row['images_per_second']:.0f} img/s",
            file=self.stream,
            flush=True,
        )
