"""A trained run classifies the user's own pictures: the top classes and their probabilities.

Each picture goes the way the run's test images went: read as the dataset holds its
images (uint8, the run's channels, the dataset's image size), then the run's own test
transform: [0, 1] scaling, the normalization fitted when the run started (read from the
run folder, never refitted), and the centre crop of runs with `data.crop` (so the
model gets its input size; ZCA, fitted on whole images, needs them whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from tinyvision.data.image_files import read_image
from tinyvision.data.loader import BatchTransform
from tinyvision.data.polarity import Look, Reference
from tinyvision.errors import UserError
from tinyvision.inference.trained import TrainedRun, load_trained
from tinyvision.train.loop import Learner

BATCH = 256


@dataclass
class Guess:
    name: str  # the class name
    index: int  # the class number, the model's output index
    probability: float


@dataclass
class Prediction:
    image: Path
    top: list[Guess]  # the most probable first
    inverted: bool = False  # its background was the run's data's inverse: it was inverted
    note: str = ""  # what was found about its background, and done
    warning: str = ""  # unlike any training image: the answer may mean little


def image_shape(trained: TrainedRun) -> tuple[int, int, int]:
    """Channels, height and width of the run's images, before any crop."""
    shape = trained.data.input_shape
    if len(shape) != 3 or shape[0] not in (1, 3):
        described = "x".join(map(str, shape))
        raise UserError(
            f"the run was trained on {described} {trained.data.name} data, not on pictures: "
            "predict classifies images with a run trained on an image dataset"
        )
    return shape  # type: ignore[return-value]


def load_images(paths: Sequence[Path], shape: tuple[int, int, int]) -> torch.Tensor:
    """Every file read first: a bad one stops everything before any work is done."""
    if not paths:
        raise UserError("no image given: name at least one PNG or JPEG file")
    return torch.stack([read_image(path, shape[0], shape[1:]) for path in paths])


@torch.inference_mode()
def probabilities(trained: TrainedRun, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, classes) of uint8 images shaped like the run's data."""
    transform = BatchTransform(trained.cfg.data, trained.stats, train=False)
    unused = torch.Generator()  # the test transform draws nothing
    # the test-time views the run measured its test accuracy with, in float32
    train = trained.cfg.train
    views = Learner(trained.model, None, tta=train.tta, tta_shift=train.tta_shift)
    parts = []
    for start in range(0, len(images), BATCH):
        x = transform(images[start : start + BATCH], unused)
        parts.append(torch.softmax(views.infer(x), 1))
    result = torch.cat(parts)
    if not torch.isfinite(result).all():
        raise UserError(
            "the run's model gives scores that are not numbers (did the run diverge?): "
            "use a run that completed"
        )
    return result


def top_classes(probs: torch.Tensor, classes: Sequence[str], k: int) -> list[list[Guess]]:
    values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
    return [
        [Guess(classes[i], i, p) for p, i in zip(row_p.tolist(), row_i.tolist())]
        for row_p, row_i in zip(values, indices)
    ]


def examine(
    trained: TrainedRun, batch: torch.Tensor, invert: bool, how_to_keep: str
) -> tuple[torch.Tensor, list[Look]]:
    """The pictures as the model should see them: inverted where their background is the
    run's data's inverse (light on black, say, drawn dark on white) and `invert`."""
    return Reference(trained.data.train_x).examine(batch, invert, how_to_keep)


def predict(
    run_folder: Path,
    images: Sequence[Path],
    top: int = 5,
    data_dir: Path | None = None,
    invert: bool = True,
) -> list[Prediction]:
    """The `top` most probable classes of each image (all classes when there are fewer).
    `invert`: a picture whose background is the inverse of the run's images' is inverted
    first (and its Prediction says so)."""
    if top < 1:
        raise UserError(f"top={top}: ask for at least 1 class")
    trained = load_trained(run_folder, None, "predict", data_dir)
    batch = load_images(images, image_shape(trained))
    batch, looks = examine(trained, batch, invert, "--no-invert keeps it")
    guesses = top_classes(probabilities(trained, batch), trained.data.classes, top)
    return [
        Prediction(Path(path), best, look.inverted, look.note, look.warning)
        for path, best, look in zip(images, guesses, looks)
    ]
