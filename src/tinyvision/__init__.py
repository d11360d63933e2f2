"""tinyvision: the basics of deep learning for vision, as one tested toolkit.

`import tinyvision as tv` is cheap: the API (`tv.run`, `tv.load`, ...; see
`tinyvision.api`) and the models (`tv.models.ViT`, ...) load torch on first use only,
so the command line's `--help` stays fast.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from tinyvision import openmp

# How OpenMP's threads wait, read once when torch loads it (tinyvision/openmp.py): they
# sleep at a barrier rather than spin, after a short spin on a machine idle at start-up.
openmp.set_waiting(os.environ, openmp.machine_is_idle())

__version__ = "0.1.0"

_API = (
    "run",
    "resume",
    "sweep",
    "study",
    "search",
    "load",
    "runs",
    "course",
    "Run",
    "Sweep",
    "Search",
    "exercises",
    "grade",
)
__all__ = [*_API, "models", "check", "UserError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("tinyvision.api"), name)
    if name in ("models", "check"):
        return importlib.import_module(f"tinyvision.{name}")
    if name == "UserError":
        from tinyvision.errors import UserError

        return UserError
    raise AttributeError(f"module 'tinyvision' has no attribute {name!r}")
