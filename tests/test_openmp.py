"""How OpenMP's threads wait: passive everywhere, a short spin first on an idle machine,
and whatever the environment already says left alone."""

from __future__ import annotations

import os
import subprocess
import sys

from tinyvision import openmp


def test_an_idle_machine_gets_passive_waiting_after_a_short_spin():
    environ: dict[str, str] = {}
    openmp.set_waiting(environ, idle=True)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"}


def test_a_busy_machine_gets_passive_waiting_at_once():
    environ: dict[str, str] = {}
    openmp.set_waiting(environ, idle=False)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_what_the_environment_says_is_kept():
    active = {"OMP_WAIT_POLICY": "ACTIVE"}
    openmp.set_waiting(active, idle=True)
    assert active == {"OMP_WAIT_POLICY": "ACTIVE"}  # spinning asked for: no spin count
    spin = {"GOMP_SPINCOUNT": "0"}
    openmp.set_waiting(spin, idle=True)
    assert spin == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"}


def test_idle_is_a_load_average_under_half_a_core_each(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    for load, idle in ((0.3, True), (1.99, True), (2.0, False), (6.5, False)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert openmp.machine_is_idle() is idle

    def unknown():
        raise OSError("no load average")

    monkeypatch.setattr(os, "getloadavg", unknown)
    assert openmp.machine_is_idle() is False


def test_importing_tinyvision_sets_the_policy_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = (
        "import os, tinyvision, sys; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["PASSIVE", "False"]  # set, and torch not loaded yet
