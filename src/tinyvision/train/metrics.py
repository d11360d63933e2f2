"""Metrics accumulated on the device and read once per epoch (no per-batch host sync)."""

from __future__ import annotations

import torch


class Accumulator:
    """Sums of loss, top-1 hits, top-5 hits and examples, kept as one device tensor."""

    def __init__(self, device: torch.device):
        self.totals = torch.zeros(4, dtype=torch.float64, device=device)

    @torch.no_grad()
    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        if labels.ndim == 2:  # soft labels (mixup, cutmix): their main class counts
            labels = labels.argmax(1)
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices == labels[:, None]
        n = labels.new_tensor(labels.shape[0], dtype=torch.float64)
        hits1, hits5 = top[:, 0].sum().double(), top.any(1).sum().double()
        self.totals += torch.stack([loss.detach().double() * n, hits1, hits5, n])

    def read(self) -> dict[str, float]:
        loss, top1, top5, n = self.totals.tolist()  # the one host sync of the epoch
        n = max(n, 1.0)
        return {"loss": loss / n, "acc": 100 * top1 / n, "acc5": 100 * top5 / n}
