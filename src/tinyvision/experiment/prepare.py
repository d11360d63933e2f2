"""Everything a run needs, built and checked before its folder exists.

Whatever can be wrong with the input (config, data files, a model that does not fit the
data, a hook that does not apply) is found here, so bad input leaves nothing behind.
"""

from __future__ import annotations

import random
import sys
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
from tinyvision.train import budget, precision, threads
from tinyvision.train.ema import WeightAverage
from tinyvision.train.lookahead import Lookahead
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


def choose_threads(
    cfg: Config,
    model: nn.Module,
    shape: tuple[int, ...],
    data: Dataset,
    device: torch.device,
    resumed: int | None,
) -> threads.Threads:
    """Resolve train.threads: 0 times a few steps at 1 and at all threads (CPU only)."""
    hand_written = cfg.model.variant in STEPS
    return threads.choose(
        cfg.train.threads,
        model,
        None if hand_written else lambda params: create_optimizer(cfg.optim, params),
        shape,
        min(cfg.train.batch_size, len(data.train_y)),
        data.num_classes,
        device,
        resumed=resumed,
    )


def _as_recorded(cfg: Config, chosen: Precision, recorded: dict) -> Precision:
    """A resumed run keeps the precision it began with: a retry on another machine (or a
    new probe) must not switch it between bf16 and float32 mid-run. A config forcing
    another is obeyed, and said."""
    amp, layout = recorded.get("amp"), recorded.get("channels_last")
    if amp not in ("bf16", "none") or not isinstance(layout, bool):
        return chosen  # no usable record (an older run): chosen as a new run would
    was = Precision(amp == "bf16", layout, "recorded")
    if (was.amp, was.channels_last) == (chosen.amp, chosen.channels_last):
        return was
    if chosen.source == "forced" or (cfg.train.amp != "auto" and chosen.amp != was.amp):
        print(
            f"tinyvision: note: resuming with amp={'bf16' if chosen.amp else 'none'}, "
            f"channels_last={chosen.channels_last} as its config forces; the run began with "
            f"amp={amp}, channels_last={layout}",
            file=sys.stderr,
            flush=True,
        )
        return chosen
    if chosen.source == "fixed" and was.amp and not chosen.amp:  # no bf16 on this device
        return chosen
    return was


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
        lookahead=(
            Lookahead(model, cfg.train.lookahead, cfg.train.lookahead_steps)
            if cfg.train.lookahead > 0
            else None
        ),
        tta=cfg.train.tta,
        tta_shift=cfg.train.tta_shift,
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
    transform = BatchTransform(cfg.data, stats, train, nhwc, data.num_classes, test_split=not train)
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
    stats: dict | None = None,
    recorded_precision: dict | None = None,
    resumed_threads: int | None = None,
) -> Experiment:
    """Everything a run needs, checked. `size_to_budget`: a train.time_budget picks the
    epoch count (a new run); off, the config's count stands (a resumed run keeps its own).
    A resumed run passes what it recorded when it started: its normalization `stats` and
    its precision, so it goes on as it began (not refitted, not probed again);
    `resumed_threads`: the thread count it started with, kept."""
    validate(cfg)
    if cfg.train.logger == "tensorboard":
        tensorboard_writer_class()  # missing package: one line now, not after training
    seed_everything(cfg.train.seed)
    data = load_dataset(cfg.data, data_dir)
    hook_classes = hooks_for(cfg, data)  # may refuse the combination, before any folder
    if stats is None:
        stats = fit_normalization(cfg.data, data.train_x)
    input_shape = model_input_shape(cfg, data)
    model = create_model(cfg.model, input_shape, data.num_classes)
    rows = summarize(model, input_shape)
    layers = format_table(rows, input_shape)
    # threads first: the precision's timings (and their cache) are for that thread count
    thread_choice = choose_threads(cfg, model, input_shape, data, device, resumed_threads)
    chosen = choose_precision(cfg, model.to(device), input_shape, data, device)
    if recorded_precision is not None:
        chosen = _as_recorded(cfg, chosen, recorded_precision)
    train_loader = _loader(cfg, data, stats, True, device, chosen.channels_last)
    test_loader = _loader(cfg, data, stats, False, device, chosen.channels_last)
    learner = build_learner(cfg, model, device, len(train_loader), chosen)
    sized, asked = None, cfg
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
        "macs": sum(r.macs for r in rows),  # multiply-adds per image, as layers.txt counts
        "input_shape": list(input_shape),
        "classes": data.num_classes,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "thread_choice": thread_choice.record(),  # and the timings it was chosen from
        "amp": "bf16" if learner.amp else "none",
        "precision": chosen.record(),  # and the timings it was chosen from
        "data": {**data.provenance, "normalization": describe(stats)},
    }
    if sized is not None:
        info["time_budget"] = sized.record()
    exp = Experiment(
        cfg,
        data,
        learner,
        train_loader,
        test_loader,
        info,
        stats,
        layers,
        sized=sized,
        asked=asked if sized else None,
    )
    exp.hooks = [hook(exp) for hook in hook_classes]
    return exp
