"""Run an experiment from its config into a run folder; resume an interrupted one.

Everything that can be wrong with the input (config, data files, a model that does not
fit the data, a hook that does not apply) is found in `prepare`, before the run folder
exists, so bad input leaves nothing behind. While it trains, a run holds its folder's
lock (`tinyvision.runs.folder`): that is how `runs ls` tells a live run from a dead one,
and how `resume` refuses to write into a run that is still going.
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
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
from tinyvision.io import save_safetensors, save_torch
from tinyvision.models import count_params, create_model
from tinyvision.models.mlp_steps import STEPS
from tinyvision.models.summary import format_table, summarize
from tinyvision.runs import index
from tinyvision.runs.folder import (
    CHECKPOINT,
    WEIGHTS,
    RunFolder,
    check_resumable,
    new_run_dir,
)
from tinyvision.runs.hooks import Hook, hooks_for
from tinyvision.runs.interrupts import held_interrupts
from tinyvision.runs.normalization import save_normalization
from tinyvision.train import budget, precision
from tinyvision.train.ema import WeightAverage
from tinyvision.train.loop import Learner, fit
from tinyvision.train.optim import create_optimizer, create_schedule
from tinyvision.train.precision import Precision
from tinyvision.train.progress import EpochProgress

# What `run` and `resume` return as the process's exit code for each final status.
EXIT_CODES = {"completed": 0, "diverged": 3, "interrupted": 130, "pruned": 0}

HookFactory = Callable[["Experiment"], Hook]  # a hook a caller adds to one run (a search's)


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


@dataclass
class Experiment:
    cfg: Config
    data: Dataset
    learner: Learner
    train_loader: DeviceLoader
    test_loader: DeviceLoader
    info: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)  # the fitted normalization
    layers: str = ""  # the model's layer table, as `tinyvision summary` prints it
    hooks: list[Hook] = field(default_factory=list)
    sized: budget.EpochPlan | None = None  # how train.time_budget sized a new run


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
            cfg = replace(cfg, train=replace(cfg.train, epochs=sized.epochs))
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
        "ema": learner.ema.state_dict() if learner.ema else {},
        "history": folder.history,
        "rng": rng,
        "seconds": seconds,
        "hooks": {hook.name: hook.state() for hook in exp.hooks},
        "time_budget": exp.info.get("time_budget") or {},  # the sizing resume does not redo
    }


def _restore(exp: Experiment, folder: RunFolder) -> float:
    """Load the checkpoint into the experiment; any mismatch is one line of ours."""
    path = folder.path / CHECKPOINT
    try:
        state = torch.load(path, map_location=exp.learner.device, weights_only=True)
    except Exception as e:  # truncated, foreign or hostile: torch raises many kinds
        raise UserError(
            f"{path}: not a readable tinyvision checkpoint ({type(e).__name__}); delete it "
            "to restart the run from epoch 0, or start a new run"
        ) from None
    try:
        _load_state(exp, folder, state)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise UserError(
            f"{path} does not match the run's config.json ({reason}); restore the original "
            "config.json, or delete the checkpoint to restart from epoch 0"
        ) from None
    return float(state["seconds"])


def _load_state(exp: Experiment, folder: RunFolder, state: dict) -> None:
    learner = exp.learner
    if not isinstance(state, dict):
        raise TypeError("the checkpoint is not a dictionary")
    learner.model.load_state_dict(state["model"])
    if learner.optimizer and state["optimizer"]:
        learner.optimizer.load_state_dict(state["optimizer"])
    if learner.scheduler and state["scheduler"]:
        learner.scheduler.load_state_dict(state["scheduler"])
    if learner.ema:
        learner.ema.load_state_dict(state["ema"])
    history = list(state["history"])
    if len(history) != int(state["epoch"]) or len(history) > exp.cfg.train.epochs:
        raise ValueError(f"{len(history)} epochs recorded for {exp.cfg.train.epochs} planned")
    torch.set_rng_state(state["rng"]["torch"].cpu())
    exp.train_loader.generator.set_state(state["rng"]["loader"].cpu())
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    folder.history = history
    for hook in exp.hooks:
        hook.load(state.get("hooks", {}).get(hook.name) or {})
    sized = budget.checked_record(state.get("time_budget"))
    if sized:
        exp.info["time_budget"] = sized
    float(state["seconds"])


def _no_space(folder: RunFolder) -> UserError:
    return UserError(
        f"no space left on the device holding {folder.path}: free some space, then "
        f"`tinyvision resume {folder.path}` continues from the last completed epoch"
    )


def execute(exp: Experiment, folder: RunFolder, quiet: bool, prior_seconds: float = 0.0) -> dict:
    """Train from the folder's last epoch to the end, recording as it goes.

    Ctrl-C and SIGTERM end the run `interrupted`, a full disk too (the last checkpoint
    stays whole, since every write is atomic); any other error `failed`. Either way the
    run can be resumed from its last completed epoch.
    """
    config = exp.cfg.to_dict()
    folder.info = {**folder.info, **exp.info}
    start = time.perf_counter() - prior_seconds

    def elapsed() -> float:
        return time.perf_counter() - start

    writer = None
    saved = len(folder.history)  # epochs whose checkpoint is on disk

    def on_epoch_end(row: dict) -> str | None:
        nonlocal saved
        with held_interrupts():  # the epoch is recorded whole or not at all
            folder.history.append(row)
            for hook in exp.hooks:
                hook.on_epoch_end(exp, folder.path, row)
            folder.write_metrics()
            save_torch(_checkpoint(exp, folder, elapsed()), folder.path / CHECKPOINT)
            saved = len(folder.history)
        if writer is not None:
            _log_scalars(writer, row)
        verdicts = [hook.verdict(exp, row) for hook in exp.hooks]
        return next((v for v in verdicts if v), None)

    def back_to_checkpoint() -> None:
        """An epoch cut short before its checkpoint: the records say what resume will find."""
        if len(folder.history) > saved:
            del folder.history[saved:]
            try:
                folder.write_metrics()
            except OSError:
                pass

    try:
        folder.index("running", config)
        if exp.cfg.train.logger == "tensorboard":
            writer = tensorboard_writer_class()(log_dir=str(folder.path))
        for hook in exp.hooks:
            hook.on_start(exp, folder.path)
        progress = EpochProgress(exp.cfg.train.epochs, quiet)
        if exp.sized is not None:
            progress.note(exp.sized.describe())
        status = fit(
            exp.learner,
            exp.train_loader,
            exp.test_loader,
            exp.cfg.train.epochs,
            start_epoch=len(folder.history),
            on_epoch_end=on_epoch_end,
            progress=progress,
        )
        if exp.learner.ema is not None:
            exp.learner.ema.copy_to_model()  # the weights the test accuracy was measured with
        save_safetensors(exp.learner.model.state_dict(), folder.path / WEIGHTS)
        return _finish(exp, folder, status, elapsed())
    except KeyboardInterrupt:
        back_to_checkpoint()
        _finish(exp, folder, "interrupted", elapsed(), quietly=True)
        raise
    except OSError as e:
        back_to_checkpoint()
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            _finish(exp, folder, "failed", elapsed(), quietly=True)
            raise
        _finish(exp, folder, "interrupted", elapsed(), quietly=True)
        raise _no_space(folder) from None
    except Exception:
        back_to_checkpoint()
        _finish(exp, folder, "failed", elapsed(), quietly=True)
        raise
    finally:
        if writer is not None:
            writer.close()


def _log_scalars(writer, row: dict) -> None:
    for key, value in row.items():
        if key != "epoch":
            split, _, name = key.partition("_")
            tag = f"{name}/{split}" if split in ("train", "test") else key
            writer.add_scalar(tag, value, row["epoch"])
    writer.flush()


def _finish(
    exp: Experiment, folder: RunFolder, status: str, seconds: float, quietly: bool = False
) -> dict:
    """Hooks' last word, then summary.json, curves.png and the index row.

    `quietly`: on the way out of an error, recording the status is best effort (the disk
    may be full); the run's lock being released is what marks it dead then.
    """
    try:
        for hook in exp.hooks:
            folder.info.update(hook.on_finish(exp, folder.path, status))
        return folder.finish(status, seconds, exp.cfg.to_dict())
    except (OSError, UserError):
        if not quietly:
            raise
        return {}


def run(
    cfg: Config,
    out: Path,
    device: str = "auto",
    quiet: bool = False,
    data_dir: str | Path | None = None,
    run_dir: Path | None = None,
    sweep: str | None = None,
    hooks: Sequence[HookFactory] = (),
) -> tuple[Path, dict]:
    """Train `cfg` into a new run folder; `hooks` are added to the configured ones."""
    exp = prepare(cfg, resolve_device(device), data_dir)
    exp.hooks += [hook(exp) for hook in hooks]
    try:
        index.check_writable(out)  # a damaged index: one line, and no folder left behind
    except OSError as e:
        raise UserError(f"{out}: cannot write the run index ({e.strerror or e})") from None
    folder = RunFolder(run_dir or new_run_dir(out, cfg.preset), out)
    folder.info = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "sweep": sweep}
    folder.make()
    with folder.lock():
        try:
            folder.write_config(exp.cfg.to_dict())  # with the epochs a time budget chose
            folder.write_layers(exp.layers)
            save_normalization(exp.stats, folder.path)
        except KeyboardInterrupt:  # Ctrl-C before the run is recorded: nothing was trained
            folder.remove()
            raise
        except OSError as e:  # a full disk before the first epoch: leave no empty folder
            folder.remove()
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise UserError(
                    f"no space left on the device holding {out}: free some space and run again"
                ) from None
            raise
        return folder.path, execute(exp, folder, quiet)


def find_root(run_path: Path) -> Path:
    """The records root of a run: the nearest parent holding index.sqlite."""
    for parent in run_path.resolve().parents:
        if (parent / "index.sqlite").is_file():
            return parent
    return run_path.resolve().parent


def resume(
    run_path: Path,
    device: str = "auto",
    quiet: bool = False,
    data_dir: str | Path | None = None,
    hooks: Sequence[HookFactory] = (),
) -> tuple[Path, dict]:
    check_resumable(run_path)
    folder = RunFolder(run_path.resolve(), find_root(run_path))
    with folder.lock():  # refuses, in one line, a run that is still going
        summary = check_resumable(run_path)  # again: it may have ended before the lock
        cfg = Config.from_dict(folder.config(), source=str(run_path / "config.json"))
        exp = prepare(cfg, resolve_device(device), data_dir, size_to_budget=False)
        exp.hooks += [hook(exp) for hook in hooks]
        folder.remove_temporary_files()  # what a crash mid-write left
        prior = 0.0
        if (run_path / CHECKPOINT).is_file():
            prior = _restore(exp, folder)
        folder.info = {
            "created": summary.get("created") or time.strftime("%Y-%m-%d %H:%M:%S"),
            "sweep": summary.get("sweep"),
            "resumed_from_epoch": len(folder.history),
        }
        sized = budget.checked_record(summary.get("time_budget"))
        if sized and "time_budget" not in exp.info:  # a run stopped before its checkpoint
            exp.info["time_budget"] = sized
        save_normalization(exp.stats, folder.path)
        return folder.path, execute(exp, folder, quiet, prior)
