"""float32 or bf16 autocast, NCHW or channels_last: chosen by timing the model itself.

A CPU flag says what the hardware has, not what is fast for this model at this batch
size: a CPU with AVX-512 BF16 but no AMX tiles trains the course CNN about twice as fast
under bf16 autocast with channels_last (2-core AMD EPYC Zen 5, torch 2.14.1:
`benchmarks/pipeline.py`), which a rule looking for AMX would miss, and one with AVX2
alone trains it 15x slower under bf16. So `auto` times a few
training steps (forward, backward, optimizer step) of each candidate on a copy of the
model, with a random batch of the run's shape, and keeps the fastest (bf16 only when it
is at least 10% faster than float32: less precision for a gain within the noise is a
bad trade). The result is
cached per machine, torch version, thread count and model shape under
`~/.cache/tinyvision/precision/`, so a machine pays for the probe once per model shape.

The probe leaves the run untouched: it trains a deep copy, draws its batch from its own
generator and restores torch's global random state (dropout draws from it), so a run
that probed gives the same numbers as a run forced to the same choice.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tinyvision.data.sources import cache_dir
from tinyvision.io import write_json
from tinyvision.records_read import RecordError, read_json_object
from tinyvision.train.loop import Learner

CACHE_VERSION = 1
ROUNDS = 3  # timed steps per candidate, after one untimed warm-up step each
BUDGET_S = 10.0  # past this, no further round starts (big models: one timed step each)
# bf16 keeps 8 bits of mantissa: worth it for a clear gain, not for one within the noise
BF16_MARGIN = 0.10
# First every candidate trains a few images; one that is SCREEN_FACTOR times slower per
# image than the fastest cannot win and is not timed on the full batch. On a CPU without
# bf16 instructions bf16 is 15x slower than float32 for the course CNN: on a 2-core
# AVX2-only AMD EPYC Zen 3 (torch 2.14.1) one full batch of it takes 2.6 s, and timing it
# on full batches makes a 13 s probe of what is 4-5 s with the screen.
SCREEN_IMAGES = 16
SCREEN_FACTOR = 4.0


@dataclass(frozen=True)
class Candidate:
    amp: bool  # bf16 autocast
    channels_last: bool

    @property
    def name(self) -> str:
        return ("bf16" if self.amp else "fp32") + ("+channels_last" if self.channels_last else "")


@dataclass
class Precision:
    """The resolved train.amp and train.channels_last, and how they were chosen."""

    amp: bool
    channels_last: bool
    # probe: timed now; cache: timed earlier on this machine; forced: by the config;
    # fixed: only one candidate applies (hand-written MLPs, no bf16 on the device, ...)
    source: str
    images_per_s: dict[str, float] = field(default_factory=dict)  # candidate name -> speed

    def record(self) -> dict[str, Any]:
        """What summary.json keeps: the choice, and the timings it was made from."""
        fp32 = Candidate(False, self.channels_last).name
        bf16 = Candidate(True, self.channels_last).name
        return {
            "amp": "bf16" if self.amp else "none",
            "channels_last": self.channels_last,
            "fp32_images_per_s": self.images_per_s.get(fp32),
            "bf16_images_per_s": self.images_per_s.get(bf16),
            "images_per_s": dict(self.images_per_s),
            "probed": self.source == "probe",
            "source": self.source,
        }


# A timer is given a candidate and one training step to run; it returns its seconds.
Timer = Callable[[Candidate, Callable[[], None]], float]


def wall_clock(candidate: Candidate, step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def bf16_can_run(device: torch.device) -> bool:
    """Where bf16 autocast is worth timing at all (CPUs emulate it where they lack it)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


def candidates(
    amp: str, channels_last: bool | str, model: nn.Module, input_shape: tuple[int, ...], device
) -> list[Candidate]:
    """The settings `auto` leaves open; forced settings are a single option."""
    amps = [amp == "bf16"] if amp != "auto" else [False, True] if bf16_can_run(device) else [False]
    if channels_last != "auto":
        layouts = [bool(channels_last)]
    else:  # the layout matters only to images meeting 2-D convolutions (4-D weights)
        convolves = len(input_shape) == 3 and any(p.dim() == 4 for p in model.parameters())
        layouts = [False, True] if convolves else [False]
    return [Candidate(a, c) for a in amps for c in layouts]


def probe(
    model: nn.Module,
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    input_shape: tuple[int, ...],
    batch_size: int,
    num_classes: int,
    device: torch.device,
    options: list[Candidate],
    timer: Timer = wall_clock,
    rounds: int = ROUNDS,
) -> dict[str, float]:
    """Images per second of each candidate's training step, on copies of the model.

    Where the batch is larger than SCREEN_IMAGES, each candidate first trains that many
    images twice (warm-up, then timed); one more than SCREEN_FACTOR times slower per image
    than the fastest keeps that speed and is timed no further. The others get one untimed
    warm-up step each (first-call costs: kernel selection, allocations), then `rounds`
    timed steps, the candidates interleaved so that a change of load on the machine hits
    them alike; a candidate's speed is the batch over its median step. A candidate that
    fails (out of memory, an operation missing in bf16) gets 0.
    """
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch_size, *input_shape, generator=generator, device=device)
    y = torch.randint(0, num_classes, (batch_size,), generator=generator, device=device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # dropout in the copies draws from it
        learners = _learners(model, make_optimizer, device, options)
        speeds: dict[Candidate, float] = {}
        timed = options
        if batch_size > SCREEN_IMAGES and len(options) > 1:
            small = _steps(learners, x[:SCREEN_IMAGES], y[:SCREEN_IMAGES], device, options)
            screened = _time(options, small, SCREEN_IMAGES, 2, timer)
            best = max(screened.values())
            speeds = {c: v for c, v in screened.items() if v * SCREEN_FACTOR < best}
            timed = [c for c in options if c not in speeds]
        steps = _steps(learners, x, y, device, timed)
        speeds.update(_time(timed, steps, batch_size, rounds + 1, timer))
    return {c.name: speeds[c] for c in options}


def _time(
    options: list[Candidate],
    steps: dict[Candidate, Callable[[], None]],
    batch_size: int,
    rounds: int,
    timer: Timer,
) -> dict[Candidate, float]:
    """Images per second: the first round untimed, then the median of the others (at
    least one; later rounds only within BUDGET_S); 0 for a candidate that failed."""
    seconds: dict[Candidate, list[float]] = {c: [] for c in options}
    failed: set[Candidate] = set()
    start = time.perf_counter()
    for round_ in range(rounds):  # round 0: the warm-up
        if round_ > 1 and time.perf_counter() - start > BUDGET_S:
            break
        for c in options:
            if c in failed:
                continue
            try:
                took = timer(c, steps[c])
            except (RuntimeError, NotImplementedError):
                failed.add(c)
                continue
            if round_:
                seconds[c].append(took)
    return {
        c: 0.0 if c in failed else batch_size / max(statistics.median(seconds[c]), 10**-9)
        for c in options
    }


def _learners(model, make_optimizer, device, options) -> dict[bool, Learner]:
    """One model copy per layout, shared by both precisions."""
    copies: dict[bool, Learner] = {}
    for layout in sorted({c.channels_last for c in options}):
        twin = copy.deepcopy(model).to(device).train()
        if layout:
            twin.to(memory_format=torch.channels_last)
        copies[layout] = Learner(twin, make_optimizer(twin.parameters()), device=device)
    return copies


def _steps(learners, x, y, device, options) -> dict[Candidate, Callable[[], None]]:
    """A training step on (x, y) per candidate."""
    inputs = {
        False: x,
        True: x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x,
    }

    def step_for(c: Candidate) -> Callable[[], None]:
        learner = learners[c.channels_last]

        def step() -> None:
            learner.amp = c.amp
            learner.train_step(inputs[c.channels_last], y)
            if device.type == "cuda":  # the step's kernels, not their launch
                torch.cuda.synchronize(device)

        return step

    return {c: step_for(c) for c in options}


def fastest(options: list[Candidate], speeds: dict[str, float]) -> Candidate:
    """The fastest, bf16 only where it beats float32 by BF16_MARGIN; on a tie the first."""

    def score(c: Candidate) -> tuple[float, int]:
        speed = speeds.get(c.name, 0.0) / (1 + BF16_MARGIN if c.amp else 1)
        return speed, -options.index(c)

    return max(options, key=score)


# --- the cache ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the speed of a kernel depends on: the CPU (model and flags), the GPU."""
    cpu = {"name": platform.processor() or platform.machine(), "flags": ""}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu["name"] = value.strip()
            elif key.strip() in ("flags", "Features") and not cpu["flags"]:
                cpu["flags"] = hashlib.sha256(value.strip().encode()).hexdigest()[:16]
    except OSError:  # not Linux: the processor's name is what there is
        pass
    # the instructions torch uses, not only those the CPU has: ATEN_CPU_CAPABILITY and
    # ONEDNN_MAX_CPU_ISA hold them back (an AVX2-only CPU emulated on one with AVX-512
    # BF16 must not be handed the bf16 choice timed without them)
    cpu["isa"] = torch.backends.cpu.get_cpu_capability()
    cpu["onednn_isa"] = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    if torch.cuda.is_available():
        cpu["gpu"] = torch.cuda.get_device_name()
    return cpu


def cache_key(
    model_id: Any, input_shape: tuple[int, ...], batch_size: int, classes: int, device, options
) -> dict[str, Any]:
    model_digest = hashlib.sha256(json.dumps(model_id, sort_keys=True, default=str).encode())
    return {
        "version": CACHE_VERSION,
        "machine": machine(),
        "torch": torch.__version__,
        "device": torch.device(device).type,
        "threads": torch.get_num_threads(),  # sweeps with --jobs run on fewer threads
        "model": model_digest.hexdigest()[:16],
        "input_shape": list(input_shape),
        "batch_size": batch_size,
        "classes": classes,
        "candidates": [c.name for c in options],
    }


def cache_path(key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir() / "precision" / f"{digest}.json"


def read_cache(path: Path, key: dict[str, Any]) -> dict[str, float] | None:
    """The cached speeds, or None when absent, damaged or for another key."""
    try:
        entry = read_json_object(path)
    except RecordError:
        return None
    if entry.get("key") != key:
        return None
    speeds = entry.get("images_per_s")
    if not isinstance(speeds, dict) or set(speeds) != set(key["candidates"]):
        return None
    ok = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in speeds.values()
    )
    return {k: float(v) for k, v in speeds.items()} if ok else None


def write_cache(path: Path, key: dict[str, Any], speeds: dict[str, float]) -> None:
    try:
        write_json(path, {"key": key, "images_per_s": speeds})
    except OSError:  # a read-only or full home: the choice stands, uncached
        pass


def choose(
    amp: str,
    channels_last: bool | str,
    model: nn.Module,
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    input_shape: tuple[int, ...],
    batch_size: int,
    num_classes: int,
    device: torch.device,
    model_id: Any,
    timer: Timer = wall_clock,
) -> Precision:
    """Resolve train.amp and train.channels_last; `model_id` names the model's shape."""
    options = candidates(amp, channels_last, model, input_shape, device)
    if len(options) == 1:
        forced = amp != "auto" and channels_last != "auto"
        only = options[0]
        return Precision(only.amp, only.channels_last, "forced" if forced else "fixed")
    key = cache_key(model_id, input_shape, batch_size, num_classes, device, options)
    path = cache_path(key)
    speeds, source = read_cache(path, key), "cache"
    if speeds is None:
        speeds, source = (
            probe(
                model, make_optimizer, input_shape, batch_size, num_classes, device, options, timer
            ),
            "probe",
        )
        if all(speeds.values()):  # a failure may be passing (memory): not remembered
            write_cache(path, key, speeds)
    best = fastest(options, speeds)
    return Precision(best.amp, best.channels_last, source, speeds)
