"""Course pipeline versus tinyvision's, side by side in one process.

Both train the course CNN on the same CIFAR-shaped data (random 3x32x32 uint8 images)
with random crop 28 + horizontal flip, batch 128, for the same number of steps:

  (a) the usual course pipeline: a torch `Dataset` of PIL images with per-sample
      torchvision transforms, `DataLoader(num_workers=2, shuffle=True)`, and a loop that
      reads `loss.item()` and the accuracy every batch;
  (b) tinyvision: the split as one uint8 tensor on the device, batched augmentation,
      metrics read once per epoch; in fp32, then with its CPU/GPU speed options.

Run: `python benchmarks/pipeline.py [--steps N] [--images N] [--device cpu|cuda]`.
Prints images per second for each and the ratio to (a).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

from tinyvision.config import DataConfig
from tinyvision.data.loader import BatchTransform, DeviceLoader
from tinyvision.models.cnn import CourseCNN
from tinyvision.train.loop import Learner, train_epoch

MEAN, STD = (0.491, 0.482, 0.447), (0.202, 0.199, 0.201)  # the course's CIFAR-10 constants
BATCH, LR = 128, 0.1


class CourseDataset(torch.utils.data.Dataset):
    """What torchvision's CIFAR10 does: an HWC uint8 array, a PIL image per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def model_on(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    model = CourseCNN(3, 10)
    model(torch.zeros(1, 3, 28, 28))  # size the lazy fc4
    return model.to(device)


def course_pipeline(images, labels, steps: int, device: torch.device) -> float:
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
    model = model_on(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    done, seen, start = 0, 0, None
    while done < steps:
        for x, y in loader:
            if start is None:  # the workers' start-up is not counted against (a)
                start = time.perf_counter()
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss = loss_fn(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            _ = loss.item()  # the course's running loss and Prec@1, every batch
            _ = (out.argmax(1) == y).float().mean().item()
            done, seen = done + 1, seen + len(y)
            if done == steps:
                break
    return seen / (time.perf_counter() - start)


def tinyvision_pipeline(
    images, labels, steps: int, device: torch.device, amp: bool = False, channels_last: bool = False
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
    model = model_on(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images).astype(np.int64)
    print(
        f"course CNN, {args.steps} steps of batch {BATCH}, random crop 28 + flip, "
        f"device {device}, {torch.get_num_threads()} threads"
    )
    results = {
        "(a) course: Dataset + per-sample transforms + DataLoader(2 workers)": course_pipeline(
            images, labels, args.steps, device
        )
    }
    results["(b) tinyvision loader + loop, fp32"] = tinyvision_pipeline(
        images, labels, args.steps, device
    )
    results["(b) tinyvision, bf16 autocast + channels_last"] = tinyvision_pipeline(
        images, labels, args.steps, device, amp=True, channels_last=True
    )
    base = next(iter(results.values()))
    width = max(map(len, results))
    print(f"{'pipeline':<{width}}  {'images/s':>10}  {'ratio to (a)':>12}")
    for name, speed in results.items():
        print(f"{name:<{width}}  {speed:>10.0f}  {speed / base:>11.2f}x")


if __name__ == "__main__":
    main()
