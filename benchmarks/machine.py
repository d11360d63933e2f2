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


def cpu_info() -> tuple[str, set[str], float | None]:
    """The CPU's name, its flags and its clock in GHz (Linux; elsewhere what is known)."""
    name, flags, mhz = platform.processor() or platform.machine(), set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name":
                name = value
            elif key == "flags":
                flags = set(value.split())
            elif key == "cpu MHz" and mhz is None:
                mhz = float(value)
    except OSError:
        pass
    return name, flags, mhz / 1000 if mhz else None


def describe() -> str:
    """Two lines: CPU, cores, clock, torch (and the GPU); then the flags that matter."""
    name, flags, ghz = cpu_info()
    clock = f"{ghz:.2f} GHz listed" if ghz else "clock unknown"
    gpu = f"; GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "; no GPU"
    return (
        f"CPU: {name}, {os.cpu_count() or 1} cores, {clock}; torch {torch.__version__}{gpu}\n"
        "flags: " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS)
    )
