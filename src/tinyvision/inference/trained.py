"""A finished run brought back: its config, its data, its model and its normalization."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from tinyvision.config import Config
from tinyvision.data.datasets import Dataset, load_dataset
from tinyvision.data.preprocess import Normalizer
from tinyvision.errors import UserError
from tinyvision.experiment.folder import CONFIG, WEIGHTS, RunFolder
from tinyvision.experiment.normalization import load_normalization
from tinyvision.experiment.prepare import model_input_shape


@dataclass
class TrainedRun:
    cfg: Config
    data: Dataset
    model: nn.Module  # final weights, eval mode, on the CPU
    input_shape: tuple[int, ...]
    stats: dict[str, Any]  # the normalization fitted when the run started

    @property
    def normalize(self) -> Normalizer:
        return Normalizer(self.stats)


def load_trained(
    run_folder: Path, model_name: str | None, command: str, data_dir: Path | None = None
) -> TrainedRun:
    """A run of `model_name` (None: of any model), with the weights and statistics it
    recorded; `command` names what needs it, for the error messages. `data_dir`: where
    its dataset is (default $TINYVISION_DATA, then the cache)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not run_folder.is_dir():
        raise UserError(f"{run_folder}: no such run folder (`tinyvision runs ls` lists them)")
    if (run_folder / CONFIG).is_symlink():  # a shared folder must not read files elsewhere
        raise UserError(f"{run_folder / CONFIG}: a symbolic link; records must be plain files")
    folder = RunFolder(run_folder, run_folder.parent)
    cfg = Config.from_dict(folder.config(), source=str(run_folder / CONFIG))
    if model_name is not None and cfg.model.name != model_name:
        raise UserError(
            f"{run_folder}: a run of model.name={cfg.model.name}; {command} needs {model_name}"
        )
    weights = run_folder / WEIGHTS
    if weights.is_symlink():
        raise UserError(
            f"{weights}: a symbolic link, refused (links are never followed); put the "
            "weights file itself there"
        )
    if not weights.is_file():
        raise UserError(f"{run_folder}: no {WEIGHTS} (did the run finish?)")
    stats = load_normalization(run_folder)
    data: Dataset = load_dataset(cfg.data, data_dir)
    shape = model_input_shape(cfg, data)
    from tinyvision.models import create_model

    model: nn.Module = create_model(cfg.model, shape, data.num_classes)
    try:
        model.load_state_dict(load_file(weights))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{weights}: not a readable weights file ({e}); rerun the run") from None
    except RuntimeError as e:
        reason = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise UserError(f"{weights} does not match the model: {reason}") from None
    return TrainedRun(cfg, data, model.eval(), shape, stats)
