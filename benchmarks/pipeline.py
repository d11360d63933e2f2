"""Course pipeline versus tinyvision's, each in the same precisions, side by side.

Both train the course CNN on the same CIFAR-shaped data (random 3x32x32 uint8 images)
with random crop 28 + horizontal flip, batch 128, for the same number of steps:

  (a) the usual course pipeline: a torch `Dataset` of PIL images with per-sample
      torchvision transforms, `DataLoader(num_workers=2, shuffle=True)`, and a loop that
      reads `loss.item()` and the accuracy every batch;
  (b) tinyvision: the split as one uint8 tensor on the device, batched augmentation,
      metrics read once per epoch.

Each pipeline runs in float32 and under bf16 autocast, with and without channels_last,
so the table shows the pipeline's gain (b over a, same precision) apart from the
precision's gain (each setting over float32, same pipeline). Beside it: the machine
(CPU, the flags that decide bf16 speed, cores, torch) and the float32 throughput as a
fraction of the CPU's float32 peak: cores x listed clock x FLOPs per cycle of its FMA
units, or what the best dense product measures where that is more (a hypervisor lists
the nominal clock; the cores may run faster).

Run: `python benchmarks/pipeline.py [--steps N] [--repeats N] [--device cpu|cuda]
[--peak-gflops G]` (about two minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from machine import cpu_family, cpu_info, describe
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

from tinyvision.config import DataConfig
from tinyvision.data.loader import BatchTransform, DeviceLoader
from tinyvision.models.cnn import CourseCNN
from tinyvision.models.summary import summarize
from tinyvision.train.loop import Learner, train_epoch

MEAN, STD = (0.491, 0.482, 0.447), (0.202, 0.199, 0.201)  # the course's CIFAR-10 constants
BATCH, LR, SHAPE = 128, 0.1, (3, 28, 28)
SETTINGS = {  # name: (bf16 autocast, channels_last)
    "fp32": (False, False),
    "fp32 + channels_last": (False, True),
    "bf16 autocast": (True, False),
    "bf16 autocast + channels_last": (True, True),
}


class CourseDataset(torch.utils.data.Dataset):
    """What torchvision's CIFAR10 does: an HWC uint8 array, a PIL image per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def model_on(device: torch.device, channels_last: bool) -> nn.Module:
    torch.manual_seed(0)
    model = CourseCNN(3, 10)
    model(torch.zeros(1, *SHAPE))  # size the lazy fc4
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def course_pipeline(
    images, labels, steps: int, device: torch.device, amp: bool, channels_last: bool
) -> float:
    transform = transforms.Compose(
        [
            transforms.RandomCrop(28),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    loader = DataLoader(
        CourseDataset(images.transpose(0, 2, 3, 1), labels, transform),
        batch_size=BATCH,
        shuffle=True,
        num_workers=2,
        drop_last=True,
    )
    model = model_on(device, channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    batches, done, seen, start = iter(loader), 0, 0, None
    while done < steps:
        try:
            x, y = next(batches)
        except StopIteration:  # a new epoch: new workers, as the course's loop gets
            batches = iter(loader)
            continue
        if start is None:  # the workers' start-up is not counted against (a)
            start = time.perf_counter()
        x, y = x.to(device), y.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x).float()
        loss = loss_fn(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        _ = loss.item()  # the course's running loss and Prec@1, every batch
        _ = (out.argmax(1) == y).float().mean().item()
        done, seen = done + 1, seen + len(y)
    speed = seen / (time.perf_counter() - start)
    del batches  # its workers stop now, not during the next measurement
    return speed


def tinyvision_pipeline(
    images, labels, steps: int, device: torch.device, amp: bool, channels_last: bool
) -> float:
    cfg = DataConfig(crop=28, flip=True)
    stats = {"scheme": "standardize", "mean": list(MEAN), "std": list(STD)}
    n = steps * BATCH
    loader = DeviceLoader(
        torch.from_numpy(images[:n]),
        torch.from_numpy(labels[:n]),
        BATCH,
        BatchTransform(cfg, stats, train=True, channels_last=channels_last),
        device,
        shuffle=True,
        generator=torch.Generator(device=device).manual_seed(0),
    )
    model = model_on(device, channels_last)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=LR), amp=amp, device=device)
    train_epoch(
        learner,
        DeviceLoader(  # warm-up: a few steps, as (a) gets its workers started
            loader.images[: 5 * BATCH],
            loader.labels[: 5 * BATCH],
            BATCH,
            loader.transform,
            device,
            shuffle=True,
        ),
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_epoch(learner, loader)  # reads its metrics once, at the end
    return n / (time.perf_counter() - start)


# --- the machine ---------------------------------------------------------------------


def flops_per_cycle(
    flags: set[str], vendor_amd: bool, family: int | None = None
) -> tuple[int, str]:
    """float32 FLOPs per cycle per core from the widest FMA, and why.

    Two FMA pipes per core on every x86 core of the last decade; AMD's Zen 4 (family 25)
    runs a 512-bit instruction as two 256-bit halves, Zen 5 server cores (family 26) at
    full width, so AVX-512 doubles the width on Intel and Zen 5 (Intel parts with a
    single 512-bit unit get half of this estimate).
    """
    if "avx512f" in flags and not vendor_amd:
        return 64, "AVX-512: 2 FMA units x 16 lanes x 2"
    if "avx512f" in flags and (family or 0) >= 26:
        return 64, "AVX-512 on AMD Zen 5 (full width): 2 FMA pipes x 16 lanes x 2"
    if "avx512f" in flags:
        return 32, "AVX-512 on AMD (Zen 4: 256-bit halves): 2 FMA pipes x 8 lanes x 2"
    if "fma" in flags:
        return 32, "AVX2: 2 FMA units x 8 lanes x 2"
    return 8, "SSE: 2 units x 4 lanes, no FMA"


SLOW_SMALL_PRODUCT_S = 0.05  # a 512x512 product under 5 GFLOP/s


def dense_gflops(dtype: torch.dtype, repeats: int = 4) -> float:
    """What the best dense product reaches: the peak within reach, whatever the clock.

    Two libraries, two kernels: a 3072x3072 matrix product (BLAS) and a 1x1 convolution
    over 1024 channels in channels_last (oneDNN, which runs the CNN's convolutions).
    A type the CPU only emulates (bf16 without AVX-512 BF16 or AMX) would run those for
    minutes: where a 512x512 product is that slow, its figure is the answer.
    """
    small = torch.randn(512, 512).to(dtype)
    seconds_of(lambda: small @ small)  # warm-up
    took = min(seconds_of(lambda: small @ small) for _ in range(repeats))
    if took > SLOW_SMALL_PRODUCT_S:
        return 2 * 512**3 / took / 1e9
    a, b = torch.randn(3072, 3072).to(dtype), torch.randn(3072, 3072).to(dtype)
    x = torch.randn(32, 1024, 14, 14).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(1024, 1024, 1, 1).to(dtype).contiguous(memory_format=torch.channels_last)
    best = 0.0
    for flops, call in (
        (2 * 3072**3, lambda: a @ b),
        (2 * 32 * 1024 * 1024 * 14 * 14, lambda: torch.nn.functional.conv2d(x, w)),
    ):
        call()  # warm-up
        best = max(best, flops / min(seconds_of(call) for _ in range(repeats)) / 1e9)
    return best


def seconds_of(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def course_cnn_flops() -> int:
    """Training FLOPs per image: forward mult-adds x 2 (FLOPs) x 3 (forward + backward)."""
    macs = sum(row.macs for row in summarize(model_on(torch.device("cpu"), False), SHAPE))
    return macs * 2 * 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2, help="passes over the grid")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-gflops", type=float, help="the float32 peak, if known")
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (max(args.steps * BATCH, 5 * BATCH), 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images)).astype(np.int64)

    name, flags, ghz = cpu_info()
    cores = os.cpu_count() or 1
    print(describe())
    print(
        f"course CNN, best of {args.repeats} x {args.steps} steps of batch {BATCH}, random crop "
        f"28 + flip, device "
        f"{device}, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f}"
    )

    # The whole grid `--repeats` times, each cell's best kept: a burst of load from
    # elsewhere during one pass does not decide the table.
    speeds: dict[tuple[str, str], float] = {}
    for _ in range(args.repeats):
        for setting, (amp, channels_last) in SETTINGS.items():
            for pipeline, measure in (("a", course_pipeline), ("b", tinyvision_pipeline)):
                speed = measure(images, labels, args.steps, device, amp, channels_last)
                speeds[pipeline, setting] = max(speed, speeds.get((pipeline, setting), 0.0))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}\n")

    width = max(map(len, SETTINGS))
    print(
        f"{'precision':<{width}}  {'(a) course':>10}  {'vs fp32':>7}  "
        f"{'(b) tinyvision':>14}  {'vs fp32':>7}  {'(b)/(a)':>7}  {'vs (a) fp32':>11}"
    )
    base_a, base_b = speeds["a", "fp32"], speeds["b", "fp32"]
    for setting in SETTINGS:
        a, b = speeds["a", setting], speeds["b", setting]
        print(
            f"{setting:<{width}}  {a:>10.0f}  {a / base_a:>6.2f}x  {b:>14.0f}  "
            f"{b / base_b:>6.2f}x  {b / a:>6.2f}x  {b / base_a:>10.2f}x"
        )
    print(
        "images/s; vs fp32: the precision's gain within a pipeline; (b)/(a): the "
        "pipeline's gain at the same precision; vs (a) fp32: both together"
    )

    if device.type == "cpu":
        flops = course_cnn_flops()
        per_cycle, why = flops_per_cycle(flags, "AMD" in name.upper(), cpu_family())
        peak = args.peak_gflops or cores * (ghz or 0) * per_cycle
        how = (
            "given"
            if args.peak_gflops
            else f"{cores} cores x {ghz or 0:.2f} GHz x {per_cycle} ({why})"
        )
        dense, dense_bf16 = dense_gflops(torch.float32), dense_gflops(torch.bfloat16)
        print(f"\nfloat32 peak estimate: {peak:.0f} GFLOP/s = {how}")
        print(
            f"the best dense product (BLAS matrix product, oneDNN 1x1 convolution) reaches "
            f"{dense:.0f} GFLOP/s in float32, {dense_bf16:.0f} in bf16"
        )
        if not args.peak_gflops and dense > peak:
            clock = dense / cores / per_cycle
            print(f"  above the estimate: the cores run at {clock:.2f} GHz at least, not as listed")
            peak = dense
        print(f"course CNN: {flops / 1e6:.1f} MFLOP per training image (forward mult-adds x 2 x 3)")
        for pipeline in ("a", "b"):
            for setting in ("fp32", "fp32 + channels_last"):
                achieved = speeds[pipeline, setting] * flops / 1e9
                share = f", {achieved / peak:.0%} of {peak:.0f}" if peak else ""
                print(f"  ({pipeline}) {setting}: {achieved:.0f} GFLOP/s{share}")


if __name__ == "__main__":
    main()
