"""Is a picture drawn like the run's images? Its background, and how far it is from them.

MNIST and Fashion-MNIST show light objects on a black background; a shirt drawn dark on
white paper is, to a model trained on them, a different picture altogether (a dark shirt
on white was read "Coat 47%, Ankle boot 34%", the same shirt light on black "T-shirt/top
63%"). The background is what the border pixels show: a picture whose border is far
from the training images' borders, and whose inverse is near them, is inverted (by
default; the caller may keep it as it is), and the caller says so.

A picture can also be unlike every training image (a photograph, noise): described by
its mean brightness, its spread, its border brightness and its median brightness, it
is much further from its nearest training image than the training images are from their
own nearest neighbours. Such a picture gets a warning: the model answers anyway, and
its answer means little.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BORDER = 2  # pixels along each edge that show the background
SAMPLE = 4000  # training images the statistics are read from (a fixed, seeded choice)
# The border is "unlike" the training images' when further from their mean than this
# many of their standard deviations, and than MIN_GAP grey levels (uniform backgrounds
# have almost no spread: a few grey levels would otherwise count).
SPREAD_FACTOR, MIN_GAP = 4.0, 48.0
# A picture is unlike every training image when its K-th nearest training image is further
# than FAR times the largest such distance among the training images themselves (in
# standard deviations of each statistic; at least MIN_FAR): the K-th, not the nearest, so
# that a few odd training images do not make everything look near.
K, FAR, MIN_FAR = 20, 1.25, 1.0
# Resizing a picture to the data's size moves its statistics by a few grey levels: a
# statistic the training images barely vary in is measured in steps of at least this.
MIN_SCALE = 8.0


@dataclass
class Look:
    """What was found about one picture, and done to it."""

    inverted: bool = False
    note: str = ""  # the background unlike the data: inverted, or left as it is
    warning: str = ""  # unlike any training image


def features(images: torch.Tensor) -> torch.Tensor:
    """(N, 4) of uint8 (N, C, H, W) images: mean brightness, spread, border brightness and
    median brightness (the background of an MNIST image; mid-grey for noise)."""
    x = images.float()
    border = torch.cat(
        [
            x[..., :BORDER, :].flatten(1),
            x[..., -BORDER:, :].flatten(1),
            x[..., BORDER:-BORDER, :BORDER].flatten(1),
            x[..., BORDER:-BORDER, -BORDER:].flatten(1),
        ],
        dim=1,
    )
    flat = x.flatten(1)
    return torch.stack([flat.mean(1), flat.std(1), border.mean(1), flat.median(1).values], 1)


class Reference:
    """The training images' statistics, against which pictures are examined."""

    def __init__(self, train_x: torch.Tensor) -> None:
        generator = torch.Generator().manual_seed(0)
        pick = torch.randperm(len(train_x), generator=generator)[:SAMPLE]
        self.features = features(train_x[pick])
        self.scale = self.features.std(0).clamp_min(MIN_SCALE)
        self.border_mean = float(self.features[:, 2].mean())
        self.border_std = float(self.features[:, 2].std()) if len(pick) > 1 else 0.0
        # how far the training images are from their own K-th nearest
        z = self.features / self.scale
        self.k = min(K, len(pick) - 1)
        self.farthest = 0.0
        if self.k >= 1:
            distances = torch.cdist(z, z)
            distances.fill_diagonal_(float("inf"))
            self.farthest = float(distances.kthvalue(self.k, 1).values.max())

    def unlike_background(self, border: float) -> bool:
        gap = max(SPREAD_FACTOR * self.border_std, MIN_GAP)
        mine, inverse = abs(border - self.border_mean), abs(255 - border - self.border_mean)
        return mine > gap and inverse < mine

    def distance(self, feature: torch.Tensor) -> float:
        """How far a picture's statistics are from its K-th nearest training image."""
        if self.k < 1:
            return 0.0
        found = torch.cdist((feature / self.scale)[None], self.features / self.scale)[0]
        return float(found.kthvalue(self.k).values)

    def far_from_all(self, feature: torch.Tensor) -> float | None:
        """The picture's distance when it is unlike every training image (K, FAR); else None."""
        distance = self.distance(feature)
        return distance if distance > max(FAR * self.farthest, MIN_FAR) else None

    def examine(
        self, images: torch.Tensor, invert: bool, how_to_keep: str
    ) -> tuple[torch.Tensor, list[Look]]:
        """Pictures as the model should see them (inverted where their background is the
        data's inverse and `invert`), and what was found about each."""
        out, looks = images.clone(), []
        found = features(images)
        ours = f"{self.border_mean:.0f}"
        for i, feature in enumerate(found):
            look = Look()
            border = float(feature[2])
            inverse = features(255 - images[i : i + 1])[0]
            # the border says the background is the data's inverse, the picture is unlike
            # the training images, and inverted it is nearer them (a bright bag filling the
            # frame, a training image like others, is left alone)
            if (
                self.unlike_background(border)
                and self.far_from_all(feature) is not None
                and self.distance(inverse) < self.distance(feature)
            ):
                said = (
                    f"its background (border {border:.0f} of 255) is unlike the run's images' "
                    f"({ours})"
                )
                if invert:
                    out[i] = 255 - images[i]
                    feature = inverse
                    look.inverted = True
                    look.note = f"{said}: inverted, as the run's images are drawn ({how_to_keep})"
                else:
                    look.note = f"{said}; kept as it is"
            distance = self.far_from_all(feature)
            if distance is not None:
                look.warning = (
                    f"unlike any of the run's training images (brightness {feature[0]:.0f}, "
                    f"spread {feature[1]:.0f}, border {feature[2]:.0f}, median {feature[3]:.0f} "
                    "of 255): the answer may mean little"
                )
            looks.append(look)
        return out, looks
