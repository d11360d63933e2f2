"""How torch's OpenMP threads wait at a barrier, set before torch loads OpenMP.

OpenMP reads its variables once, when torch loads it, so this runs when tinyvision is
imported (the command line, its workers, and Python code that imports tinyvision before
torch). A variable already in the environment is left as it is.

- `OMP_WAIT_POLICY=PASSIVE`: a waiting thread sleeps instead of spinning. On a machine
  shared with other work a spinning thread takes the core its sibling needs: two threads
  trained the MLP 50x slower than one (benchmarks/threads.py, docs/first-hour.md).
- `GOMP_SPINCOUNT=10000` on a machine idle at start-up: a waiting thread polls that many
  times (microseconds) before it sleeps. A small model's step is thousands of short
  parallel operations, and a thread that sleeps at once pays a wake-up at each: on 2 idle
  cores the short spin gave `vit-fashion`'s ViT 1.25x and the MLP 1.9x the images/s of
  two threads sleeping at once. Under load it costs (the ViT's two threads lost a third),
  so a busy machine gets none; there the run's thread probe (`train.threads=0`) also
  tends to choose one thread, which never waits.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SPIN_COUNT = "10000"
IDLE_LOAD_PER_CORE = 0.5  # the 1-minute load average per core under which a machine is idle


def machine_is_idle() -> bool:
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average (Windows): count it busy
        return False
    return load < IDLE_LOAD_PER_CORE * (os.cpu_count() or 1)


def set_waiting(environ: MutableMapping[str, str], idle: bool) -> None:
    """The wait policy, and the short spin on an idle machine, unless `environ` has them."""
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if idle and environ["OMP_WAIT_POLICY"].upper() == "PASSIVE":
        environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
