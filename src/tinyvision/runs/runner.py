"""Run an experiment from its config into a run folder; resume an interrupted one.

Everything that can be wrong with the input (config, data files, a model that does not
fit the data) is found in `prepare`, before the run folder exists, so bad input leaves
nothing behind.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tinyvision.config import Config, validate
from tinyvision.data.datasets import Dataset, load_dataset
from tinyvision.data.loader import BatchTransform, DeviceLoader
from tinyvision.data.preprocess import describe, fit_normalization
from tinyvision.errors import UserError
from tinyvision.models import count_params, create_model
from tinyvision.report.boundary import BoundaryRecorder
from tinyvision.runs.files import save_safetensors, save_torch
from tinyvision.runs.folder import CHECKPOINT, WEIGHTS, RunFolder, new_run_dir, read_summary
from tinyvision.train.loop import Learner, fit
from tinyvision.train.optim import create_optimizer, create_schedule
from tinyvision.train.progress import EpochProgress
from tinyvision.train.variants import STEPS


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is visible here; use --device cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: Apple's MPS backend is not available; use --device cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {name}: choose auto, cpu, cuda or mps")
    return torch.device(name)


def use_bf16(setting: str, device: torch.device) -> bool:
    """Resolve train.amp: bf16 autocast only where it is fast (see TrainConfig.amp)."""
    if setting != "auto":
        return setting == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool(amx and amx())
    return False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def model_input_shape(cfg: Config, data: Dataset) -> tuple[int, ...]:
    shape = data.input_shape
    if cfg.data.crop and len(shape) == 3:
        if cfg.data.crop > min(shape[1:]) + 2 * cfg.data.pad:
            raise UserError(f"data.crop={cfg.data.crop} is larger than the {shape} images")
        return (shape[0], cfg.data.crop, cfg.data.crop)
    return shape


@dataclass
class Experiment:
    cfg: Config
    data: Dataset
    learner: Learner
    train_loader: DeviceLoader
    test_loader: DeviceLoader
    info: dict[str, Any]
    recorders: list = field(default_factory=list)  # per-epoch observers (decision boundary)


def build_learner(cfg: Config, model: nn.Module, device: torch.device, steps: int) -> Learner:
    model.to(device)
    if cfg.model.variant in STEPS:  # 1-ab: hand-written updates, float32, no optimizer
        lr = cfg.optim.lr
        step = STEPS[cfg.model.variant](model, lr, cfg.train.loss_reduction)
        return Learner(model, None, custom_step=step, device=device, fixed_lr=lr)
    if cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer(cfg.optim, model.parameters())
    scheduler = create_schedule(cfg.schedule, optimizer, cfg.train.epochs, steps)
    return Learner(
        model, optimizer, scheduler,
        step_per_batch=cfg.schedule.interval == "step",
        loss_fn=nn.CrossEntropyLoss(
            reduction=cfg.train.loss_reduction, label_smoothing=cfg.train.label_smoothing
        ),
        amp=use_bf16(cfg.train.amp, device), device=device,
        forward=torch.compile(model) if cfg.train.compile else None,
    )  # fmt: skip


def tensorboard_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(
            "train.logger=tensorboard needs the tensorboard package: "
            "pip install 'tinyvision[tensorboard]' (or train.logger=none)"
        ) from None
    return SummaryWriter


def prepare(cfg: Config, device: torch.device, data_dir: str | Path | None = None) -> Experiment:
    validate(cfg)
    if cfg.train.logger == "tensorboard":
        tensorboard_writer_class()  # missing package: one line now, not after training
    seed_everything(cfg.train.seed)
    data = load_dataset(cfg.data, data_dir)
    stats = fit_normalization(cfg.data, data.train_x)
    input_shape = model_input_shape(cfg, data)
    model = create_model(cfg.model, input_shape, data.num_classes)
    cl = cfg.train.channels_last
    generator = torch.Generator(device=device).manual_seed(cfg.train.seed)
    train_loader = DeviceLoader(
        data.train_x, data.train_y, cfg.train.batch_size,
        BatchTransform(cfg.data, stats, True, cl, data.num_classes), device,
        shuffle=True, generator=generator,
    )  # fmt: skip
    test_loader = DeviceLoader(
        data.test_x, data.test_y, cfg.train.eval_batch_size,
        BatchTransform(cfg.data, stats, False, cl, data.num_classes), device, shuffle=False,
    )  # fmt: skip
    learner = build_learner(cfg, model, device, len(train_loader))
    info = {
        "params": count_params(model),
        "tokens": getattr(model, "num_tokens", None),  # ViTs: patches + class token
        "input_shape": list(input_shape),
        "classes": data.num_classes,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "amp": "bf16" if learner.amp else "none",
        "data": {**data.provenance, "normalization": describe(stats)},
    }
    recorders = []
    if data.train_x.ndim == 2 and data.train_x.shape[1] == 2:  # 2-D points: draw the boundary
        recorders.append(BoundaryRecorder(data, device))
    return Experiment(cfg, data, learner, train_loader, test_loader, info, recorders)


def _checkpoint(exp: Experiment, folder: RunFolder, seconds: float) -> dict:
    learner = exp.learner
    rng = {"torch": torch.get_rng_state(), "loader": exp.train_loader.generator.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "epoch": len(folder.history),
        "model": learner.model.state_dict(),
        "optimizer": learner.optimizer.state_dict() if learner.optimizer else {},
        "scheduler": learner.scheduler.state_dict() if learner.scheduler else {},
        "history": folder.history,
        "rng": rng,
        "seconds": seconds,
        **{k: v for r in exp.recorders for k, v in r.state().items()},
    }


def _restore(exp: Experiment, folder: RunFolder) -> float:
    path = folder.path / CHECKPOINT
    try:
        state = torch.load(path, map_location=exp.learner.device, weights_only=True)
    except Exception as e:  # a truncated or foreign file raises many kinds
        raise UserError(f"{path}: cannot load the checkpoint ({type(e).__name__}: {e})") from None
    learner = exp.learner
    learner.model.load_state_dict(state["model"])
    if learner.optimizer and state["optimizer"]:
        learner.optimizer.load_state_dict(state["optimizer"])
    if learner.scheduler and state["scheduler"]:
        learner.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"].cpu())
    exp.train_loader.generator.set_state(state["rng"]["loader"].cpu())
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    folder.history = list(state["history"])
    for recorder in exp.recorders:
        recorder.load(state)
    return float(state["seconds"])


def execute(exp: Experiment, folder: RunFolder, quiet: bool, prior_seconds: float = 0.0) -> dict:
    """Train from the folder's last epoch to the end, recording as it goes."""
    config = exp.cfg.to_dict()
    folder.info = {**folder.info, **exp.info}
    folder.index("running", config)
    start = time.perf_counter() - prior_seconds

    def elapsed() -> float:
        return time.perf_counter() - start

    def on_epoch_end(row: dict) -> None:
        for recorder in exp.recorders:
            recorder.on_epoch_end(exp.learner.predict)
        folder.history.append(row)
        folder.write_metrics()
        save_torch(_checkpoint(exp, folder, elapsed()), folder.path / CHECKPOINT)

    progress = EpochProgress(exp.cfg.train.epochs, quiet)
    writer = None
    if exp.cfg.train.logger == "tensorboard":
        writer = tensorboard_writer_class()(log_dir=str(folder.path))

    def log(row: dict) -> None:
        on_epoch_end(row)
        if writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    split, _, name = key.partition("_")
                    tag = f"{name}/{split}" if split in ("train", "test") else key
                    writer.add_scalar(tag, value, row["epoch"])
            writer.flush()

    try:
        status = fit(
            exp.learner, exp.train_loader, exp.test_loader, exp.cfg.train.epochs,
            start_epoch=len(folder.history), on_epoch_end=log, progress=progress,
        )  # fmt: skip
    except KeyboardInterrupt:
        _finish(exp, folder, "interrupted", elapsed())
        raise
    except Exception:
        _finish(exp, folder, "failed", elapsed())
        raise
    finally:
        if writer is not None:
            writer.close()
    save_safetensors(exp.learner.model.state_dict(), folder.path / WEIGHTS)
    if exp.cfg.task == "svm":
        from tinyvision.runs.svm_comparison import run_svm_comparison

        boundary = exp.recorders[0].probabilities(exp.learner.predict)
        folder.info.update(run_svm_comparison(exp.data, boundary, folder.path))
    return _finish(exp, folder, status, elapsed())


def _finish(exp: Experiment, folder: RunFolder, status: str, seconds: float) -> dict:
    for recorder in exp.recorders:
        recorder.finish(folder.path)
    return folder.finish(status, seconds, exp.cfg.to_dict())


def run(
    cfg: Config,
    out: Path,
    device: str = "auto",
    quiet: bool = False,
    data_dir: str | Path | None = None,
    run_dir: Path | None = None,
    sweep: str | None = None,
) -> tuple[Path, dict]:
    exp = prepare(cfg, resolve_device(device), data_dir)
    folder = RunFolder(run_dir or new_run_dir(out, cfg.preset), out)
    folder.info = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "sweep": sweep}
    folder.create(cfg.to_dict())
    return folder.path, execute(exp, folder, quiet)


def find_root(run_path: Path) -> Path:
    """The records root of a run: the nearest parent holding index.sqlite."""
    for parent in run_path.resolve().parents:
        if (parent / "index.sqlite").is_file():
            return parent
    return run_path.resolve().parent


def resume(
    run_path: Path, device: str = "auto", quiet: bool = False, data_dir: str | Path | None = None
) -> tuple[Path, dict]:
    if not run_path.is_dir():
        raise UserError(f"{run_path}: no such run folder")
    folder = RunFolder(run_path.resolve(), find_root(run_path))
    summary = read_summary(run_path) or {}
    if summary.get("status") == "completed":
        raise UserError(f"{run_path}: the run already completed; nothing to resume")
    cfg = Config.from_dict(folder.config())
    exp = prepare(cfg, resolve_device(device), data_dir)
    prior = 0.0
    if (run_path / CHECKPOINT).is_file():
        prior = _restore(exp, folder)
    folder.info = {
        "created": summary.get("created") or time.strftime("%Y-%m-%d %H:%M:%S"),
        "sweep": summary.get("sweep"),
    }
    folder.info["resumed_from_epoch"] = len(folder.history)
    return folder.path, execute(exp, folder, quiet, prior)
