"""One epoch of a ViT preset, in its parts: the training steps and the test pass.

Each preset's model is built from the preset itself, and timed side by side with the
others in one process, round after round (the median is printed): one training step of
the preset's batch (bf16 autocast, as the probe picks on AVX-512 BF16 CPUs; `--fp32`
for float32), and a forward pass of 1,000 test images. An epoch of Fashion-MNIST is
then 60,000 / batch steps plus 10,000 test images through each test-time view the
preset evaluates with (1, x2 for `train.tta`, x3 for `train.tta_shift`), once every
`train.eval_every` epochs (its share per epoch is counted). A whole run is the
preset's epochs and, before them, epoch 0: the 70,000 training and test images through
one forward pass each. Random images: the times do not depend on the pixels. The ratio
to the first preset is what carries over to another machine of the same instruction set.

Run: `python benchmarks/vit_epoch.py [--presets vit-fashion-40,vit-fashion] [--rounds 5]
[--threads 1] [--fp32]`. Set `ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16` to time a CPU with
AMX as one without.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from machine import describe

from tinyvision.models import create_model
from tinyvision.presets import build_config

TRAIN_IMAGES, TEST_IMAGES, EVAL_BATCH = 60_000, 10_000, 1_000


def timers(preset: str, bf16: bool):
    """The preset's batch size, test views and epochs per test pass, and (a training
    step, a 1,000-image forward pass) of its model, each a function returning its seconds."""
    cfg = build_config(preset)
    views = (2 if cfg.train.tta else 1) * (3 if cfg.train.tta_shift else 1)
    torch.manual_seed(0)
    model = create_model(cfg.model, (1, 28, 28), 10).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-3)
    x = torch.randn(cfg.train.batch_size, 1, 28, 28).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (cfg.train.batch_size,))
    test = torch.randn(EVAL_BATCH, 1, 28, 28).to(memory_format=torch.channels_last)

    def step() -> float:
        model.train()
        start = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    def forward() -> float:
        model.eval()
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            model(test)
        return time.perf_counter() - start

    return cfg.train, views, step, forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="vit-fashion-40,vit-fashion")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8, help="training steps per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fp32", action="store_true", help="float32, not bf16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    presets = args.presets.split(",")
    print(describe())
    print(f"{args.threads} thread(s), {'float32' if args.fp32 else 'bf16 autocast'}\n")
    parts = {p: timers(p, not args.fp32) for p in presets}
    steps: dict[str, list[float]] = {p: [] for p in presets}
    forwards: dict[str, list[float]] = {p: [] for p in presets}
    for _ in range(args.rounds):
        for preset, (*_, step, forward) in parts.items():
            step(), forward()  # warm-up: allocator, kernel choice
            steps[preset].append(statistics.fmean(step() for _ in range(args.steps)))
            forwards[preset].append(statistics.fmean(forward() for _ in range(2)))
    first = None
    for preset, (train, views, _, _) in parts.items():
        step_s, forward_s = statistics.median(steps[preset]), statistics.median(forwards[preset])
        every = train.eval_every
        train_s = TRAIN_IMAGES / train.batch_size * step_s
        test_s = TEST_IMAGES / EVAL_BATCH * views * forward_s / every
        epoch = train_s + test_s
        run = (TRAIN_IMAGES + TEST_IMAGES) / EVAL_BATCH * forward_s + train.epochs * epoch
        first = first or (train_s, epoch, run)
        print(
            f"{preset}: step {1000 * step_s:.1f} ms (batch {train.batch_size}), forward "
            f"{1000 * forward_s:.1f} ms (1,000 images), {views} test view(s)"
            f"{f' every {every} epochs' if every > 1 else ''}: "
            f"train {train_s:.1f} s (x{train_s / first[0]:.2f}) + test {test_s:.1f} s = "
            f"{epoch:.1f} s an epoch (x{epoch / first[1]:.2f}); epoch 0 and "
            f"{train.epochs} epochs: {run / 60:.1f} min (x{run / first[2]:.2f})"
        )


if __name__ == "__main__":
    main()
