"""Fully-connected layers as convolutions: the course CNN made fully convolutional.

fc4 (1024 -> 1000 on a 64 x 4 x 4 volume) is a 4 x 4 convolution with 1000 filters; fc5
(1000 -> 10) a 1 x 1 convolution. The weights are the same numbers reshaped (Flatten
is channel-major, as a conv weight is). On 32 x 32 input the network gives the same
scores; on a larger image it slides the classifier and returns a map of class scores.
"""

from __future__ import annotations

import torch
from torch import nn

from tinyvision.models.cnn import CourseCNN


class FullyConvolutional(nn.Module):
    def __init__(self, cnn: CourseCNN, feature_size: int = 4):
        super().__init__()
        self.features = cnn.features
        fc4, fc5 = cnn.fc4, cnn.fc5
        channels = fc4.in_features // (feature_size * feature_size)
        self.conv4 = nn.Conv2d(channels, fc4.out_features, feature_size)
        self.act4 = cnn.act4
        self.conv5 = nn.Conv2d(fc5.in_features, fc5.out_features, 1)
        with torch.no_grad():
            self.conv4.weight.copy_(
                fc4.weight.view(fc4.out_features, channels, feature_size, feature_size)
            )
            self.conv4.bias.copy_(fc4.bias)
            self.conv5.weight.copy_(fc5.weight.view(*fc5.weight.shape, 1, 1))
            self.conv5.bias.copy_(fc5.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (B, classes, H', W'): 1 x 1 on 32 x 32 input."""
        return self.conv5(self.act4(self.conv4(self.features(x))))
