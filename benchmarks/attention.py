"""ViT training speed: the attention equations versus the fused kernel, fp32 versus bf16.

`model.attention=auto` takes `F.scaled_dot_product_attention` on GPUs and the explicit
softmax(QK^T / sqrt(d)) V on CPU. This benchmark is the measurement behind that choice:
it trains the same ViT (random 1x28x28 images, AdamW, batch 256) for the same number of
steps with each attention implementation, in float32 and under bf16 autocast, side by
side in one process, and prints images per second and the ratio to the first line.

Run: `python benchmarks/attention.py [--steps N] [--device cpu|cuda] [--sizes course,small]`.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from tinyvision.models.vit import ViT

# (embed_dim, nb_blocks, patch_size, num_heads, mlp_ratio)
SIZES = {
    "course": (32, 2, 7, 4, 4.0),  # 1e-vit-mnist: 16 patches
    "small": (64, 6, 4, 4, 2.0),  # 49 patches: vit-fashion's width and patch, 6 blocks not 4
}
BATCH = 256


def images_per_second(
    size: str, attention: str, bf16: bool, steps: int, device: torch.device
) -> float:
    torch.manual_seed(0)
    model = ViT(*SIZES[size], num_classes=10, attention=attention).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(BATCH, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (BATCH,), device=device)

    def step() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up: allocator, kernel selection
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default=",".join(SIZES))
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for size in args.sizes.split(","):
        print(f"\n{size} ViT {SIZES[size]}\n| attention | precision | images/s | vs first |")
        print("| --- | --- | --- | --- |")
        first = None
        for attention in ("fused", "explicit"):
            for bf16 in (False, True):
                rate = images_per_second(size, attention, bf16, args.steps, device)
                first = first or rate
                precision = "bf16 autocast" if bf16 else "fp32"
                print(f"| {attention} | {precision} | {rate:.0f} | {rate / first:.2f}x |")


if __name__ == "__main__":
    main()
