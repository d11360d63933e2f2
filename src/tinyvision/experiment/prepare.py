"""Everything a run needs, built and checked before its folder exists.

Whatever can be wrong with the input (config, data files, a model that does not fit the
data, a hook that does not apply) is found here, so bad input leaves nothing behind.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinyvision.config import Config, validate
from tinyvision.data.datasets import Dataset, load_dataset
from tinyvision.data.loader import BatchTransform, DeviceLoader
from tinyvision.data.preprocess import describe, fit_normalization
from tinyvision.errors import UserError
from tinyvision.experiment.hooks import hooks_for
from tinyvision.experiment.parts import Experiment
from tinyvision.models import count_params, create_model
from tinyvision.models.mlp_steps import STEPS
from tinyvision.models.summary import format_table, summarize
from tinyvision.train import budget, precision
from tinyvision.train.ema import WeightAverage
from tinyvision.train.loop import Learner
from tinyvision.train.optim import create_optimizer, create_schedule
from tinyvision.train.precision import Precision


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


def choose_precision(
    cfg: Config, model: nn.Module, shape: tuple[int, ...], data: Dataset, device: torch.device
) -> Precision:
    """Resolve train.amp and train.channels_last: `auto` times the model each way."""
    if cfg.model.variant in STEPS:  # hand-written updates: float32 and plain tensors
        return Precision(False, False, "fixed")
    return precision.choose(
        cfg.train.amp,
        cfg.train.channels_last,
        model,
        lambda params: create_optimizer(cfg.optim, params),
        shape,
        min(cfg.train.batch_size, len(data.train_y)),  # the batch the run will train on
        data.num_classes,
        device,
        model_id=asdict(cfg.model),
    )


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


def build_learner(
    cfg: Config, model: nn.Module, device: torch.device, steps: int, chosen: Precision
) -> Learner:
    model.to(device)
    if cfg.model.variant in STEPS:  # hand-written updates: float32, no optimizer
        lr = cfg.optim.lr
        step = STEPS[cfg.model.variant](model, lr, cfg.train.loss_reduction)
        return Learner(model, None, custom_step=step, device=device, fixed_lr=lr)
    if chosen.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer(cfg.optim, model.parameters())
    scheduler = create_schedule(cfg.schedule, optimizer, cfg.train.epochs, steps)
    loss_fn = nn.CrossEntropyLoss(
        reduction=cfg.train.loss_reduction, label_smoothing=cfg.train.label_smoothing
    )
    average = WeightAverage(model, cfg.train.ema) if cfg.train.ema > 0 else None
    return Learner(
        model,
        optimizer,
        scheduler,
        step_per_batch=cfg.schedule.interval == "step",
        loss_fn=loss_fn,
        amp=chosen.amp,
        device=device,
        forward=torch.compile(model) if cfg.train.compile else None,
        ema=average,
        tta=cfg.train.tta,
    )


def tensorboard_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(
            "train.logger=tensorboard needs the tensorboard package: "
            "pip install 'tinyvision[tensorboard]' (or train.logger=none)"
        ) from None
    return SummaryWriter


def _loader(cfg: Config, data: Dataset, stats: dict, train: bool, device: torch.device, nhwc: bool):
    x, y = (data.train_x, data.train_y) if train else (data.test_x, data.test_y)
    transform = BatchTransform(cfg.data, stats, train, nhwc, data.num_classes)
    if train:
        generator = torch.Generator(device=device).manual_seed(cfg.train.seed)
        return DeviceLoader(
            x, y, cfg.train.batch_size, transform, device, shuffle=True, generator=generator
        )
    return DeviceLoader(x, y, cfg.train.eval_batch_size, transform, device, shuffle=False)


def prepare(
    cfg: Config,
    device: torch.device,
    data_dir: str | Path | None = None,
    size_to_budget: bool = True,
) -> Experiment:
    """Everything a run needs, checked. `size_to_budget`: a train.time_budget picks the
    epoch count (a new run); off, the config's count stands (a resumed run keeps its own)."""
    validate(cfg)
    if cfg.train.logger == "tensorboard":
        tensorboard_writer_class()  # missing package: one line now, not after training
    seed_everything(cfg.train.seed)
    data = load_dataset(cfg.data, data_dir)
    hook_classes = hooks_for(cfg, data)  # may refuse the combination, before any folder
    stats = fit_normalization(cfg.data, data.train_x)
    input_shape = model_input_shape(cfg, data)
    model = create_model(cfg.model, input_shape, data.num_classes)
    layers = format_table(summarize(model, input_shape), input_shape)
    chosen = choose_precision(cfg, model.to(device), input_shape, data, device)
    train_loader = _loader(cfg, data, stats, True, device, chosen.channels_last)
    test_loader = _loader(cfg, data, stats, False, device, chosen.channels_last)
    learner = build_learner(cfg, model, device, len(train_loader), chosen)
    sized = None
    if cfg.train.time_budget and size_to_budget:
        sized = budget.plan(
            learner, train_loader, test_loader, cfg.train.time_budget, cfg.train.epochs
        )
        if sized.epochs != cfg.train.epochs:  # the schedule is built for the new length
            cfg = budget.sized_config(cfg, sized.epochs)
            learner = build_learner(cfg, model, device, len(train_loader), chosen)
    info = {
        "params": count_params(model),
        "tokens": getattr(model, "num_tokens", None),  # ViTs: patches (+ class token)
        "input_shape": list(input_shape),
        "classes": data.num_classes,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "amp": "bf16" if learner.amp else "none",
        "precision": chosen.record(),  # and the timings it was chosen from
        "data": {**data.provenance, "normalization": describe(stats)},
    }
    if sized is not None:
        info["time_budget"] = sized.record()
    exp = Experiment(
        cfg, data, learner, train_loader, test_loader, info, stats, layers, sized=sized
    )
    exp.hooks = [hook(exp) for hook in hook_classes]
    return exp
