"""Checks of the code the course asks students to write: `tv.check.forward(forward)`.

Each check runs the student's piece against tinyvision's reference on seeded inputs
(edge cases included) and returns a Result that prints as one line ✔, or as one or two
lines saying what differs and the likely cause. `.use()` prints it and gives back the
student's piece if it passed, tinyvision's reference otherwise:

    forward = tv.check.forward(forward).use()

The pieces (names, signatures, conventions) are listed in `tinyvision.check.pieces`.
"""

from __future__ import annotations

from typing import Any

from tinyvision.check.cnn import (
    cnn,
    conv_output_size,
    random_crop,
    receptive_field,
    standardize,
    zca,
)
from tinyvision.check.core import Result, reference, submitted
from tinyvision.check.mlp import backward, forward, init_params, loss_accuracy, sgd
from tinyvision.check.pieces import PIECES
from tinyvision.check.vit import (
    attention,
    block,
    multihead_attention,
    patch_embed,
    positional_embedding,
    vit,
)

CHECKS = {
    "init_params": init_params,
    "forward": forward,
    "loss_accuracy": loss_accuracy,
    "backward": backward,
    "sgd": sgd,
    "conv_output_size": conv_output_size,
    "receptive_field": receptive_field,
    "standardize": standardize,
    "zca": zca,
    "random_crop": random_crop,
    "cnn": cnn,
    "attention": attention,
    "multihead_attention": multihead_attention,
    "block": block,
    "patch_embed": patch_embed,
    "positional_embedding": positional_embedding,
    "vit": vit,
}
assert CHECKS.keys() == PIECES.keys()


def run(check: str, piece: Any) -> Result:
    """The check named `check` on `piece`."""
    return CHECKS[check](piece)


def grade_namespace(namespace: dict[str, Any], checks: list[str]) -> dict[str, list[str]]:
    """Every check in `checks` on the piece a notebook defined: {check: [status, reason]}.

    The piece is what the notebook's check cell was given (its name may since have been
    rebound to the reference), else the notebook's global of the piece's name.
    """
    verdicts = {}
    for check in checks:
        piece = submitted.get(check, namespace.get(PIECES[check].name))
        result = run(check, piece)
        verdicts[check] = [result.status, result.reason]
    return verdicts


__all__ = [*CHECKS, "CHECKS", "PIECES", "Result", "grade_namespace", "reference", "run"]
