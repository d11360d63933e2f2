"""The machine a benchmark's figures come from, printed beside them.

The same code is 1.3x or 4x faster depending on the CPU (AMX tiles, AVX-512 BF16), so
every figure goes out with the CPU's name, its relevant flags, the GPU if any, and torch.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

# What decides CPU speed for this work: vector width, bf16 dot products, AMX tiles.
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (Linux; empty elsewhere)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            fields.setdefault(key, value)
    except OSError:
        pass
    return fields


def cpu_info() -> tuple[str, set[str], float | None]:
    """The CPU's name, its flags and its clock in GHz (Linux; elsewhere what is known)."""
    fields = _cpuinfo()
    name = fields.get("model name") or platform.processor() or platform.machine()
    mhz = fields.get("cpu MHz")
    return name, set(fields.get("flags", "").split()), float(mhz) / 1000 if mhz else None


# AMD's "cpu family" numbers: the model name of a virtual machine often hides the
# generation ("AMD EPYC"), and it decides the AVX-512 width (Zen 4 halves, Zen 5 full).
# Family 25 holds both Zen 3 (AVX2 only) and Zen 4 (the first with AVX-512).
AMD_FAMILIES = {23: "Zen 1/Zen 2", 25: "Zen 3/Zen 4", 26: "Zen 5"}


def amd_generation(family: int | None, flags: set[str]) -> str | None:
    """The Zen generation an AMD CPU family (and, for family 25, AVX-512) names."""
    if family == 25:
        return "Zen 4" if "avx512f" in flags else "Zen 3"
    return AMD_FAMILIES.get(family) if family is not None else None


def cpu_family() -> int | None:
    """/proc/cpuinfo's "cpu family" (Linux), or None."""
    family = _cpuinfo().get("cpu family", "")
    return int(family) if family.isdigit() else None


def describe() -> str:
    """Two lines: CPU, cores, clock, torch (and the GPU); then the flags that matter."""
    name, flags, ghz = cpu_info()
    family = cpu_family()
    generation = amd_generation(family, flags)
    if "AMD" in name.upper() and generation:
        name += f" (family {family}: {generation})"
    clock = f"{ghz:.2f} GHz listed" if ghz else "clock unknown"
    gpu = f"; GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "; no GPU"
    return (
        f"CPU: {name}, {os.cpu_count() or 1} cores, {clock}; torch {torch.__version__}{gpu}\n"
        "flags: " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS)
    )
