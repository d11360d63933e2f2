"""Signals held while an epoch is recorded come afterwards, to the handler that was there."""

from __future__ import annotations

import _thread
import signal
import threading

import pytest

from tinyvision.experiment.interrupts import held_interrupts


def test_ctrl_c_inside_waits_for_the_end_of_the_block():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with held_interrupts():
            signal.raise_signal(signal.SIGINT)
            steps.append("after the signal")  # the block is not cut short
        steps.append("after the block")  # never: the interrupt comes as the block ends
    assert steps == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_handler_installed_before_gets_each_signal_once():
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        with held_interrupts():
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
            assert calls == []
        assert calls == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with held_interrupts():
            signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_cancellation_reaches_a_thread_that_blocks_sigint():
    """Ray cancels a task with `_thread.interrupt_main()` in a worker whose main thread
    blocks SIGINT: sending the signal again after the block would leave it pending, the
    task running on and its run unrecorded."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        with pytest.raises(KeyboardInterrupt):
            with held_interrupts():
                _thread.interrupt_main()
                for _ in range(1000):  # the interrupt lands at a bytecode boundary
                    pass
    finally:
        pending = signal.SIGINT in signal.sigpending()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if pending else None
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    assert not pending  # nothing was left to surprise a later test


def test_outside_the_main_thread_nothing_is_held():
    seen = []

    def work():
        with held_interrupts():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]
