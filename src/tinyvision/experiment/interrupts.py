"""Hold Ctrl-C and SIGTERM while an epoch is being recorded, then deliver them.

An epoch's records are several files (metrics.csv, the checkpoint, what hooks write)
and a counter of what is on disk. A KeyboardInterrupt raised between two of those steps
leaves them disagreeing: the checkpoint already holds epoch 8 while the summary says 7
were done. Holding the signal for the few milliseconds of recording means an interrupt
lands before the epoch's records or after all of them, never between.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held_interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside the block wait until it ends.

    On leaving, the handlers installed before come back and are called for each held
    signal, so that whatever handler was there (Python's Ctrl-C, the CLI's SIGTERM, a
    sweep worker's, Ray's) acts as if the signal came then. They are called, not sent the
    signal again: a Ray worker blocks SIGINT in its main thread, and its
    cancellation (`_thread.interrupt_main`) would be lost. If the block itself fails, its
    error is what the caller sees: the run ends on it either way. Outside the main thread
    signals never reach Python code, so there is nothing to hold; nor when a handler was
    installed outside Python (it could not be put back).
    """
    outside = any(signal.getsignal(signum) is None for signum in SIGNALS)
    if outside or threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum, frame) -> None:
        held.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for signum in dict.fromkeys(held):  # once each, in the order they came
        _deliver(signum, previous[signum])


def _deliver(signum: int, handler) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:  # the default action (SIGTERM: the process ends)
        os.kill(os.getpid(), signum)
