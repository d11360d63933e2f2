"""Layer arithmetic, for the course's questions on convolutional networks."""

from __future__ import annotations

import math


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, ceil_mode: bool = False
) -> int:
    """Output width of a convolution or pooling: floor((size + 2p - k) / s) + 1."""
    span = size + 2 * padding - kernel
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # PyTorch's rule: the last window must start inside the input
    return out


def same_padding(kernel: int) -> int:
    """The padding that keeps the size at stride 1 (odd kernels): (k - 1) / 2."""
    if kernel % 2 == 0:
        raise ValueError("an even kernel cannot keep the size with symmetric padding")
    return (kernel - 1) // 2


def conv_weights(c_in: int, c_out: int, kernel: int, bias: bool = True) -> int:
    """Parameters of a convolution: shared across positions, c_out x c_in x k x k (+ c_out)."""
    return c_out * c_in * kernel * kernel + (c_out if bias else 0)


def fc_weights_same_output(
    c_in: int, size_in: int, c_out: int, size_out: int, bias: bool = True
) -> int:
    """A fully-connected layer from the same input to the same output volume."""
    n_in, n_out = c_in * size_in * size_in, c_out * size_out * size_out
    return n_in * n_out + (n_out if bias else 0)


def locally_connected_weights(
    c_in: int, c_out: int, kernel: int, size_out: int, bias: bool = True
) -> int:
    """An unshared convolution: one filter bank per output position."""
    per_position = c_out * c_in * kernel * kernel + (c_out if bias else 0)
    return per_position * size_out * size_out


def receptive_step(r: int, j: int, kernel: int, stride: int) -> tuple[int, int]:
    """One layer further: r <- r + (k - 1) * j ;  j <- j * s.

    r: the receptive field in input pixels; j (the jump): the distance in input pixels
    between two neighbouring outputs.
    """
    return r + (kernel - 1) * j, j * stride


def receptive_field(layers: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(receptive field, jump) after each (kernel, stride) layer, from the input (1, 1)."""
    r, j, out = 1, 1, []
    for kernel, stride in layers:
        r, j = receptive_step(r, j, kernel, stride)
        out.append((r, j))
    return out


def bag_of_words_svm(words: int, descriptor: int, classes: int) -> dict[str, int]:
    """Parameters of the bag-of-words + linear SVM pipeline (1-cd Q12): the codebook holds
    `words` centres of `descriptor` dimensions (SIFT: 128); one linear SVM per class
    (one against all) weighs the word histogram, plus a bias."""
    return {"svm": classes * (words + 1), "codebook": words * descriptor}
