"""A finished run brought back: its config, its data and its model with the final weights."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from tinyvision.config import Config
from tinyvision.data.datasets import Dataset, load_dataset
from tinyvision.errors import UserError
from tinyvision.models import create_model
from tinyvision.runs.folder import WEIGHTS, RunFolder
from tinyvision.runs.runner import model_input_shape


def load_trained(run_folder: Path, model_name: str, command: str):
    """(config, data, model in eval mode, model input shape) of a run of `model_name`."""
    from safetensors.torch import load_file

    cfg = Config.from_dict(RunFolder(run_folder, run_folder.parent).config())
    if cfg.model.name != model_name:
        raise UserError(
            f"{run_folder}: a run of model.name={cfg.model.name}; {command} needs {model_name}"
        )
    if not (run_folder / WEIGHTS).is_file():
        raise UserError(f"{run_folder}: no {WEIGHTS} (did the run finish?)")
    data: Dataset = load_dataset(cfg.data)
    shape = model_input_shape(cfg, data)
    model: nn.Module = create_model(cfg.model, shape, data.num_classes)
    try:
        model.load_state_dict(load_file(run_folder / WEIGHTS))
    except RuntimeError as e:
        reason = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise UserError(f"{run_folder / WEIGHTS} does not match the model: {reason}") from None
    return cfg, data, model.eval(), shape
