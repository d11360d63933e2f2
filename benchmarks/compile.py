"""torch.compile against eager for the course CNN and the course ViT: does it pay for itself?

For each model (the `cnn-fashion` and `1e-vit-mnist` presets' models on 1x28x28 images,
batch 128, their own optimizers) and each precision, a training step (forward, backward,
optimizer step, as `train.compile=true` runs it: the model compiled, the optimizer not):

  * compile cost: what the first calls cost beyond the same calls run eagerly. A run
    compiles three graphs: the training step at batch 128, again at the epoch's last,
    smaller batch (60,000 = 468 x 128 + 96), and the evaluation forward at batch 1000.
    Cold: inductor's caches empty (a fresh folder), as on a machine's first run; warm:
    compiled again in the same process, as a later run finds its on-disk caches;
  * steady state: images/s eager and compiled, timed in alternating chunks so that a
    change of load on the machine hits both alike;
  * break-even: the images a run must train on before the compile cost is repaid, in
    epochs of 60,000 images, beside the preset's epochs.

Run: `python benchmarks/compile.py [--steps N] [--models cnn,vit]` (a few minutes on a
2-core CPU: most of it is compiling).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import tempfile
import time

import torch

from tinyvision.models import create_model
from tinyvision.presets import build_config
from tinyvision.train.loop import Learner
from tinyvision.train.optim import create_optimizer

SHAPE, BATCH, LAST, EVAL, EPOCH = (1, 28, 28), 128, 96, 1000, 60_000
MODELS = {"cnn": "cnn-fashion", "vit": "1e-vit-mnist"}
SETTINGS = {  # name: (bf16 autocast, channels_last)
    "fp32": (False, False),
    "bf16 + channels_last": (True, True),
}


def learner_for(preset: str, amp: bool, channels_last: bool, compiled: bool) -> Learner:
    cfg = build_config(preset)
    torch.manual_seed(0)
    model = create_model(cfg.model, SHAPE, 10)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer(cfg.optim, model.parameters())
    forward = torch.compile(model) if compiled else None
    return Learner(model, optimizer, amp=amp, forward=forward)


def batch(n: int, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(n)
    x = torch.randn(n, *SHAPE, generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def first_calls(learner: Learner, channels_last: bool) -> float:
    """Seconds of the first training step at 128, at the last batch, of the first eval."""
    x, y = batch(BATCH, channels_last)
    xs, ys = batch(LAST, channels_last)
    xe, _ = batch(EVAL, channels_last)

    def evaluate() -> None:
        learner.model.eval()
        with torch.inference_mode():
            learner.predict(xe)
        learner.model.train()

    return (
        seconds(lambda: learner.train_step(x, y))
        + seconds(lambda: learner.train_step(xs, ys))
        + seconds(evaluate)
    )


def measure(preset: str, amp: bool, channels_last: bool, steps: int) -> dict[str, float]:
    eager = learner_for(preset, amp, channels_last, compiled=False)
    first_eager = first_calls(eager, channels_last)
    cold = first_calls(learner_for(preset, amp, channels_last, True), channels_last)
    torch._dynamo.reset()  # compile again: inductor's on-disk caches now hold this model
    compiled = learner_for(preset, amp, channels_last, compiled=True)
    warm = first_calls(compiled, channels_last)
    x, y = batch(BATCH, channels_last)
    for learner in (eager, compiled):  # warm-up past the first calls
        for _ in range(2):
            learner.train_step(x, y)
    chunk = max(1, steps // 4)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(4):
        for name, learner in (("eager", eager), ("compiled", compiled)):
            start = time.perf_counter()
            for _ in range(chunk):
                learner.train_step(x, y)
            times[name].append((time.perf_counter() - start) / chunk)
    eager_s, compiled_s = (statistics.median(times[k]) for k in ("eager", "compiled"))
    return {  # compile costs: beyond the same first calls run eagerly
        "cold_s": cold - first_eager,
        "warm_s": warm - first_eager,
        "eager": BATCH / eager_s,
        "compiled": BATCH / compiled_s,
    }


def break_even(compile_s: float, eager: float, compiled: float) -> str:
    saved = 1 / eager - 1 / compiled  # seconds saved per image
    return f"{compile_s / saved / EPOCH:.1f}" if saved > 0 else "never"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per side")
    parser.add_argument("--models", default="cnn,vit")
    args = parser.parse_args()
    # A fresh cache for inductor's code (read when it compiles): "cold" is a first compile.
    cache = tempfile.mkdtemp(prefix="inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores, {torch.get_num_threads()} threads; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    header = (
        f"{'model':<14} {'precision':<21} {'compile s':>15} {'eager':>6} {'compiled':>8} "
        f"{'ratio':>6} {'break-even, epochs':>19}"
    )
    print(header)
    print(f"{'':<36} {'cold':>7} {'warm':>7} {'':<31} {'cold':>9} {'warm':>9}")
    for key in args.models.split(","):
        preset = MODELS[key]
        epochs = build_config(preset).train.epochs
        for setting, (amp, channels_last) in SETTINGS.items():
            r = measure(preset, amp, channels_last, args.steps)
            print(
                f"{preset:<14} {setting:<21} {r['cold_s']:>7.1f} {r['warm_s']:>7.1f} "
                f"{r['eager']:>6.0f} {r['compiled']:>8.0f} {r['compiled'] / r['eager']:>5.2f}x "
                f"{break_even(r['cold_s'], r['eager'], r['compiled']):>9} "
                f"{break_even(r['warm_s'], r['eager'], r['compiled']):>9}"
            )
        print(f"{'':<14} (the preset trains {epochs} epochs of 60,000 images)")
    print(
        f"images/s at batch {BATCH}; compile s: the first calls' extra seconds (train step at "
        f"{BATCH} and {LAST}, eval at {EVAL}); load average at the end {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
