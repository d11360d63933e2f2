"""Run an experiment from its config into a run folder; resume an interrupted one.

Everything that can be wrong with the input is found by `prepare`
(`tinyvision.experiment.prepare`), before the run folder exists, so bad input leaves
nothing behind. While it trains, a run holds its folder's
lock (`tinyvision.experiment.folder`): that is how `runs ls` tells a live run from a dead one,
and how `resume` refuses to write into a run that is still going.
"""

from __future__ import annotations

import errno
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from tinyvision.config import Config
from tinyvision.data.loader import (
    PREVIEW,
    BatchTransform,
    DeviceLoader,
    augments,
    write_augmentation_preview,
)
from tinyvision.errors import UserError, first_line
from tinyvision.experiment import index
from tinyvision.experiment.folder import (
    CHECKPOINT,
    WEIGHTS,
    RunFolder,
    check_resumable,
    new_run_dir,
)
from tinyvision.experiment.interrupts import held_interrupts
from tinyvision.experiment.normalization import (
    NORMALIZATION,
    load_normalization,
    save_normalization,
)
from tinyvision.experiment.parts import Experiment, Hook
from tinyvision.experiment.prepare import prepare, resolve_device, tensorboard_writer_class
from tinyvision.io import save_safetensors, save_torch
from tinyvision.records_read import trained_rows
from tinyvision.train import budget, threads
from tinyvision.train.loop import fit, initial_row
from tinyvision.train.optim import reschedule
from tinyvision.train.progress import EpochProgress

HookFactory = Callable[[Experiment], Hook]  # a hook a caller adds to one run (a search's)


def _checkpoint(exp: Experiment, folder: RunFolder, seconds: float) -> dict:
    learner = exp.learner
    rng = {"torch": torch.get_rng_state(), "loader": exp.train_loader.generator.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "epoch": len(trained_rows(folder.history)),
        "model": learner.model.state_dict(),
        "optimizer": learner.optimizer.state_dict() if learner.optimizer else {},
        "scheduler": learner.scheduler.state_dict() if learner.scheduler else {},
        "ema": learner.ema.state_dict() if learner.ema else {},
        "lookahead": learner.lookahead.state_dict() if learner.lookahead else {},
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
        raise UserError(
            f"{path} does not match the run's config.json ({first_line(e)}); restore the original "
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
    if learner.lookahead:
        learner.lookahead.load_state_dict(state["lookahead"])
    history = list(state["history"])
    done = len(trained_rows(history))  # epoch 0, the evaluation before training, is no epoch
    if done != int(state["epoch"]) or done > exp.cfg.train.epochs:
        raise ValueError(f"{done} epochs recorded for {exp.cfg.train.epochs} planned")
    torch.set_rng_state(state["rng"]["torch"].cpu())
    exp.train_loader.generator.set_state(state["rng"]["loader"].cpu())
    exp.train_loader.passes = done  # the epochs begun: which images alternating flips mirror
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
            if exp.sized is not None and exp.sized.first_epoch_s is None:
                _plan_again(exp, folder, progress)  # sized in this process: after epoch 1
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
        if not folder.history:  # epoch 0: the untrained weights, before the first step
            learner, train, test = exp.learner, exp.train_loader, exp.test_loader
            # the training images as a test split is seen (not rotated by data.test_rotate):
            # nothing random is drawn, so the training that follows is the same without it
            transform = BatchTransform(
                exp.cfg.data, exp.stats, False, test.transform.channels_last, exp.data.num_classes
            )
            train_eval = DeviceLoader(
                train.images, train.labels, test.batch_size, transform, learner.device, False
            )
            row = initial_row(learner, train_eval, test)
            if augments(exp.cfg.data) and exp.data.train_x.ndim == 4:  # images, augmented
                write_augmentation_preview(
                    train.transform, train.images, folder.path / PREVIEW, exp.cfg.train.seed
                )
            with held_interrupts():
                folder.history.append(row)
                folder.write_metrics()
            if writer is not None:
                _log_scalars(writer, row)
            progress.note(
                f"epoch 0 (before training): train loss {row['train_loss']:.4f}, "
                f"test loss {row['test_loss']:.4f}, test acc {row['test_acc']:.2f}%"
            )
        if exp.sized is not None:
            progress.note(exp.sized.describe())
        fewer_threads = threads.describe(exp.info.get("thread_choice") or {})
        if fewer_threads:
            progress.note(fewer_threads)
        status = fit(
            exp.learner,
            exp.train_loader,
            exp.test_loader,
            lambda: exp.cfg.train.epochs,  # a time budget may plan again after epoch 1
            start_epoch=len(trained_rows(folder.history)),
            on_epoch_end=on_epoch_end,
            progress=progress,
            eval_every=exp.cfg.train.eval_every,
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


def _plan_again(exp: Experiment, folder: RunFolder, progress: EpochProgress) -> None:
    """A sized run's first epoch is done: its epoch count again, from that epoch and the
    evaluation before it as measured (`budget.EpochPlan.replanned`). A new count gets the
    schedule of its length from the second epoch on (the scheduler's counter goes on), the
    asked config sized to it (a warmup keeps its share) and, before the epoch's checkpoint,
    config.json, so a resume builds the same schedule. The record keeps the estimate and
    adds the measured epoch and the count first planned."""
    before, first = folder.history[0], folder.history[-1]  # epoch 0, epoch 1
    plan = exp.sized.replanned(float(first["epoch_seconds"]), float(before["epoch_seconds"]))
    exp.sized = plan
    exp.info["time_budget"] = folder.info["time_budget"] = plan.record()
    if plan.epochs != plan.planned_epochs:
        exp.cfg = budget.sized_config(exp.asked, plan.epochs)
        learner = exp.learner
        if learner.scheduler is not None:
            learner.scheduler = reschedule(
                learner.scheduler, exp.cfg.schedule, plan.epochs, len(exp.train_loader)
            )
        config = exp.cfg.to_dict()
        folder.write_config(config)
        folder.index("running", config)  # `runs ls` shows the new count
        progress.set_total(plan.epochs)
        progress.note(plan.describe_replan())
    folder.write_start(exp.info)


def _log_scalars(writer, row: dict) -> None:
    for key, value in row.items():
        if key != "epoch" and math.isfinite(value):  # NaN: not measured (train.eval_every)
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
        added = {}
        for hook in exp.hooks:  # each under its own name: none can overwrite `status`
            result = hook.on_finish(exp, folder.path, status)
            if result:
                added[hook.name] = result
        if added:
            folder.info["hooks"] = {**(folder.info.get("hooks") or {}), **added}
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
            folder.write_start(exp.info)  # how it was sized and its precision, before training
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
        start = folder.start() or {}
        stats = load_normalization(run_path) if (run_path / NORMALIZATION).is_file() else None
        started = summary.get("threads")
        kept = started if isinstance(started, int) and not isinstance(started, bool) else None
        exp = prepare(
            cfg,
            resolve_device(device),
            data_dir,
            size_to_budget=False,
            stats=stats,
            recorded_precision=summary.get("precision") or start.get("precision"),
            resumed_threads=kept if kept and 0 < kept <= 1024 else None,
        )
        exp.hooks += [hook(exp) for hook in hooks]
        folder.remove_temporary_files()  # what a crash mid-write left
        prior = 0.0
        if (run_path / CHECKPOINT).is_file():
            prior = _restore(exp, folder)
        folder.info = {
            "created": summary.get("created") or time.strftime("%Y-%m-%d %H:%M:%S"),
            "sweep": summary.get("sweep"),
            "resumed_from_epoch": len(trained_rows(folder.history)),
        }
        # a run stopped before its checkpoint (kill -9: before its summary too)
        sized = budget.checked_record(summary.get("time_budget") or start.get("time_budget"))
        if sized and "time_budget" not in exp.info:
            exp.info["time_budget"] = sized
        if stats is None:  # a run from before normalization.safetensors: fitted now, kept
            save_normalization(exp.stats, folder.path)
        return folder.path, execute(exp, folder, quiet, prior)
