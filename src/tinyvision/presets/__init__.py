"""Named experiments. Each module here is one preset holding only what differs.

A preset module defines `NAME`, `DESCRIPTION`, `OVERRIDES` (dotted config keys) and
optionally `PARENT` (the preset it stacks on, as the course's CNN steps do).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from typing import Any

from tinyvision.config import Config, apply_overrides, validate
from tinyvision.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    overrides: dict[str, Any]
    parent: str | None = None


@cache
def all_presets() -> dict[str, Preset]:
    presets = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        preset = Preset(
            module.NAME, module.DESCRIPTION, dict(module.OVERRIDES), getattr(module, "PARENT", None)
        )
        presets[preset.name] = preset
    return dict(sorted(presets.items()))


def get_preset(name: str) -> Preset:
    presets = all_presets()
    if name not in presets:
        raise UserError(f"unknown preset '{name}'; `tinyvision list` shows the presets")
    return presets[name]


def preset_overrides(name: str) -> dict[str, Any]:
    """The preset's overrides with its parents' applied first (the stacking)."""
    preset = get_preset(name)
    inherited = preset_overrides(preset.parent) if preset.parent else {}
    return {**inherited, **preset.overrides}


def build_config(name: str, overrides: list[str] | None = None) -> Config:
    """Base defaults, then the preset (and its parents), then the user's overrides."""
    cfg = Config(preset=name)
    apply_overrides(cfg, preset_overrides(name))
    apply_overrides(cfg, overrides or [])
    cfg.overrides = list(overrides or [])
    return validate(cfg)
