"""The convolutional networks of practical 1-cd: the course CNN and LeNet-5."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from tinyvision.models.arithmetic import conv_output_size
from tinyvision.models.mlp import ACTIVATIONS
from tinyvision.models.whiten import PatchWhitening


def conv_block(
    i: int, c_in: int, c_out: int, activation: str, batchnorm: bool, ceil_mode: bool = False
) -> list[tuple[str, nn.Module]]:
    """conv i 5x5 (padding 2 keeps the size) -> [bn i] -> activation -> pool i 2x2, named."""
    layers: list[tuple[str, nn.Module]] = [(f"conv{i}", nn.Conv2d(c_in, c_out, 5, padding=2))]
    if batchnorm:
        layers.append((f"bn{i}", nn.BatchNorm2d(c_out)))
    layers.append((f"{activation}{i}", ACTIVATIONS[activation]()))
    layers.append((f"pool{i}", nn.MaxPool2d(2, 2, ceil_mode=ceil_mode)))
    return layers


def features_side(size: int) -> int:
    """The side of the course CNN's last feature map for an input side: three 2x2 pools,
    the last with ceil_mode (32 -> 16 -> 8 -> 4; 28 -> 14 -> 7 -> 4)."""
    size = conv_output_size(conv_output_size(size, 2, 2), 2, 2)
    return conv_output_size(size, 2, 2, ceil_mode=True)


class CourseCNN(nn.Module):
    """conv 32 -> pool -> conv 64 -> pool -> conv 64 -> pool -> fc 1000 -> fc classes.

    1,191,170 parameters on 3x32x32. The last pool uses `ceil_mode=True` so that a 28x28
    input (the course's random crops, or MNIST) still gives fc4 4x4x64 = 1024 values.
    fc4 is built for `image_size` (the course's 32x32 unless the data are other images):
    a fully connected layer fixes the input size, and another size fails there
    (`tinyvision fcconv` turns fc4 and fc5 into convolutions that slide over larger images).
    """

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 10,
        activation: str = "relu",
        batchnorm: bool = False,
        dropout: float = 0.0,
        image_size: tuple[int, int] = (32, 32),
    ):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    *conv_block(1, in_chans, 32, activation, batchnorm),
                    *conv_block(2, 32, 64, activation, batchnorm),
                    *conv_block(3, 64, 64, activation, batchnorm, ceil_mode=True),
                ]
            )
        )
        self.flatten = nn.Flatten()
        # 64 x 4 x 4 = 1024 inputs on 28x28 and 32x32
        self.fc4 = nn.Linear(64 * features_side(image_size[0]) * features_side(image_size[1]), 1000)
        self.act4 = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc5 = nn.Linear(1000, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.features(x))
        return self.fc5(self.dropout(self.act4(self.fc4(x))))


class LeNet5(nn.Module):
    """LeNet-5 as the course starts it on MNIST: tanh, conv 1->6 (pad 2), 6->16, fc 120-84."""

    def __init__(self, in_chans: int = 1, num_classes: int = 10, activation: str = "tanh"):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(in_chans, 6, 5, padding=2)),
                    ("act1", act()),
                    ("pool1", nn.MaxPool2d(2, 2)),
                    ("conv2", nn.Conv2d(6, 16, 5)),
                    ("act2", act()),
                    ("pool2", nn.MaxPool2d(2, 2)),
                ]
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("flatten", nn.Flatten()),
                    ("fc3", nn.LazyLinear(120)),
                    ("act3", act()),
                    ("fc4", nn.Linear(120, 84)),
                    ("act4", act()),
                    ("fc5", nn.Linear(84, num_classes)),
                ]
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def vgg_block(
    c_in: int, c_out: int, activation: str, first: nn.Conv2d | None = None
) -> nn.Sequential:
    """conv 3x3 -> pool 2x2 -> bn -> act -> conv 3x3 -> bn -> act.

    Pooling right after the first convolution (as the fast CIFAR-10 recipes do) runs the
    block's second, wider-input convolution on a quarter of the pixels. `first` replaces
    the first convolution (the frozen whitening one), with its own number of outputs.
    """
    act = ACTIVATIONS[activation]
    first = first or nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", first),
                ("pool", nn.MaxPool2d(2)),
                ("bn1", nn.BatchNorm2d(first.out_channels)),
                ("act1", act()),
                ("conv2", nn.Conv2d(first.out_channels, c_out, 3, padding=1, bias=False)),
                ("bn2", nn.BatchNorm2d(c_out)),
                ("act2", act()),
            ]
        )
    )


class VGGNet(nn.Module):
    """A small VGG-like net with batch norm, sized for 28x28: three blocks of two 3x3
    convolutions, widths w, 2w, 4w, 28 -> 14 -> 7 -> 3 pixels, a global max pool and one
    linear layer. With w=32: 288,160 parameters and about 12M multiply-adds an image,
    less than the course CNN's 17M.

    `whiten`: the first convolution is the frozen whitening of the training patches
    (models/whiten.py), 2 * 9 * C channels (18 on grey images) in place of w, so the
    block's second convolution reads 18 channels instead of 32: 0.9M fewer multiply-adds.

    `dirac`: each trained convolution starts as the identity on its first outputs (as
    airbench initializes its convolutions), so an untrained block passes its input on
    and the first steps train a network that already carries the image through.
    """

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 10,
        width: int = 32,
        activation: str = "relu",
        dropout: float = 0.0,
        whiten: bool = False,
        dirac: bool = False,
    ):
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        first = PatchWhitening(in_chans) if whiten else None
        self.features = nn.Sequential(
            OrderedDict(
                (f"block{i + 1}", vgg_block(c_in, c_out, activation, first if i == 0 else None))
                for i, (c_in, c_out) in enumerate(zip((in_chans, *widths), widths))
            )
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(widths[-1], num_classes, bias=False)
        if dirac:
            for conv in self.modules():
                if isinstance(conv, nn.Conv2d) and not isinstance(conv, PatchWhitening):
                    # the first in_channels outputs copy the input (a 3x3 identity kernel)
                    nn.init.dirac_(conv.weight.data[: min(conv.out_channels, conv.in_channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.flatten(self.pool(self.features(x)))))
