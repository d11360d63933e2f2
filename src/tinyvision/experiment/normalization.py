"""The fitted normalization, saved with the run: the statistics are part of the model.

`normalization.safetensors` holds the tensors (mean, std, the ZCA or PCA mean and matrix) and,
as metadata, the scheme and its settings. Everything that uses a trained model again
(the pictures of a trained model, loading a run) reads them from here, not refitting them
on today's copy of the data, which may differ from the one the run was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tinyvision.errors import UserError
from tinyvision.io import save_safetensors

NORMALIZATION = "normalization.safetensors"


def save_normalization(stats: dict[str, Any], folder: Path) -> None:
    tensors, settings = {}, {}
    for key, value in stats.items():
        if isinstance(value, torch.Tensor):
            tensors[key] = value
        elif isinstance(value, (list, tuple)):
            tensors[key] = torch.tensor(value, dtype=torch.float64)
        else:
            settings[key] = value
    tensors = tensors or {"none": torch.zeros(0)}  # safetensors wants at least one tensor
    save_safetensors(tensors, folder / NORMALIZATION, {"settings": json.dumps(settings)})


def load_normalization(folder: Path) -> dict[str, Any]:
    """The statistics as `fit_normalization` returned them when the run started."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    path = folder / NORMALIZATION
    if not path.is_file() or path.is_symlink():
        raise UserError(f"{path}: missing (runs from before tinyvision 0.2 lack it: rerun)")
    try:
        with safe_open(str(path), framework="pt") as f:
            settings = json.loads((f.metadata() or {}).get("settings", "{}"))
            tensors = {key: f.get_tensor(key) for key in f.keys() if key != "none"}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not readable ({type(e).__name__}); rerun the run") from None
    if not isinstance(settings, dict) or "scheme" not in settings:
        raise UserError(f"{path}: no normalization scheme recorded; rerun the run")
    stats: dict[str, Any] = dict(settings)
    for key, value in tensors.items():
        stats[key] = value if key.startswith(("zca", "pca")) else value.tolist()
    return stats
