"""Checks of practical 1-cd's pieces: layer arithmetic, normalization, cropping, the CNN."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable

import torch
from torch import nn

from tinyvision.check import references
from tinyvision.check.core import (
    Failure,
    Result,
    StudentError,
    as_tensor,
    call,
    cases_line,
    close,
    compare,
    run_check,
)
from tinyvision.models import arithmetic
from tinyvision.models.cnn import CourseCNN


def _accepts(fn: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def conv_output_size(fn: Callable) -> Result:
    def body(fn):
        grid = [
            (size, kernel, stride, padding)
            for size in (1, 5, 7, 28, 32, 33)
            for kernel in (1, 2, 3, 5)
            for stride in (1, 2, 3)
            for padding in (0, 1, 2)
            if size + 2 * padding >= kernel and padding <= kernel // 2
        ]
        ceil = _accepts(fn, "ceil_mode")
        floats = ""
        for size, kernel, stride, padding in grid:
            modes = (False, True) if ceil and stride > 1 else (False,)
            for mode in modes:
                args = (size, kernel, stride, padding) + ((mode,) if mode else ())
                got = call(fn, *args)
                expected = arithmetic.conv_output_size(size, kernel, stride, padding, mode)
                shown = f"conv_output_size({', '.join(map(str, args))})"
                if isinstance(got, bool) or not isinstance(got, numbers.Real):
                    raise Failure(f"{shown} returned {got!r}, expected the int {expected}")
                if not isinstance(got, numbers.Integral):
                    if got != int(got):
                        raise Failure(
                            f"{shown} returned {got!r}, expected the int {expected}",
                            "not rounded down: use // (floor division)",
                        )
                    floats = floats or f"{shown} returned {got!r}"
                    got = int(got)
                if got != expected:
                    span = size + 2 * padding - kernel
                    causes = {
                        span // stride: "the + 1 is missing: floor((size + 2p - k) / s) + 1",
                        (size + padding - kernel) // stride + 1: (
                            "padding off by one in the output size formula: both sides are "
                            "padded, size + 2 * padding"
                        ),
                        (size - kernel) // stride
                        + 1: "the padding is left out: size + 2 * padding",
                        math.ceil(span / stride) + 1: "rounded up: floor the division",
                        (size + 2 * padding - kernel + 1) // stride: (
                            "the kernel's size is off by one: size + 2p - k, then / s, then + 1"
                        ),
                    }
                    if mode:
                        causes[span // stride + 1] = (
                            "ceil_mode is ignored: round the division up, then drop a last "
                            "window that would start outside the input"
                        )
                        causes[math.ceil(span / stride) + 1] = (
                            "the last window starts outside the input: with ceil_mode, drop "
                            "it when (out - 1) * stride >= size + padding"
                        )
                    raise Failure(f"{shown} returned {got}, expected {expected}", causes.get(got))
        if floats:
            raise Failure(f"{floats}, a float: a size is an int", "use // (floor division)")
        checked = "with and without ceil_mode" if ceil else "ceil_mode not taken"
        return f"matches tinyvision's reference on {len(grid)} layers ({checked})"

    return run_check("conv_output_size", fn, body)


COURSE_LAYERS = [(5, 1), (2, 2), (5, 1), (2, 2), (5, 1), (2, 2)]


def _receptive_variants(layers):
    def ignoring_jump():
        r, out = 1, []
        for k, _ in layers:
            r += k - 1
            out.append((r, 1))
        return out

    def jump_first():
        r, j, out = 1, 1, []
        for k, s in layers:
            j *= s
            r += (k - 1) * j
            out.append((r, j))
        return out

    return [
        (
            "the jump is ignored: each layer adds (k - 1) times the product of the strides "
            "before it",
            ignoring_jump,
        ),
        ("the jump is multiplied by the layer's own stride before it is used", jump_first),
    ]


def receptive_field(fn: Callable) -> Result:
    def body(fn):
        g = torch.Generator().manual_seed(3)
        cases = [("the course CNN", COURSE_LAYERS), ("one layer", [(3, 2)])]
        for i in range(4):
            depth = int(torch.randint(2, 6, (1,), generator=g))
            layers = [
                (
                    int(torch.randint(1, 8, (1,), generator=g)),
                    int(torch.randint(1, 4, (1,), generator=g)),
                )
                for _ in range(depth)
            ]
            cases.append((f"random stack {i + 1}", layers))
        for _, layers in cases:
            got = call(fn, [tuple(x) for x in layers], names=("layers",))
            expected = arithmetic.receptive_field(layers)
            try:
                pairs = [(int(r), int(j)) for r, j in got]
            except (TypeError, ValueError):
                raise Failure(
                    f"receptive_field({layers}) returned {got!r}, expected {expected}",
                    "return a list of (r, j) pairs, one per layer",
                ) from None
            if pairs != expected:
                cause = next((m for m, v in _receptive_variants(layers) if v() == pairs), None)
                raise Failure(
                    f"receptive_field({layers}) returned {pairs}, expected {expected}", cause
                )
        return cases_line([c[0] for c in cases])

    return run_check("receptive_field", fn, body)


def _images(n: int, c: int, h: int, w: int, g: torch.Generator, shift: float = 0.0):
    """Channels with their own mean and spread, so per-channel statistics matter."""
    mean = torch.linspace(-1, 2, c, dtype=torch.float64).view(1, c, 1, 1) + shift
    spread = torch.linspace(0.5, 3, c, dtype=torch.float64).view(1, c, 1, 1)
    return mean + spread * torch.rand(n, c, h, w, generator=g, dtype=torch.float64)


def _pair(got, what: str):
    if not (isinstance(got, tuple) and len(got) == 2):
        raise Failure(f"{what} must return two things: (train_x, test_x)")
    return got


def _standardize_with(train, test, fit, dims, unbiased=False):
    mean = fit.mean(dims, keepdim=True)
    std = fit.std(dims, keepdim=True, unbiased=unbiased) if dims else fit.std(unbiased=unbiased)
    return (train - mean) / std, (test - mean) / std


def standardize(fn: Callable) -> Result:
    def body(fn):
        g = torch.Generator().manual_seed(4)
        cases = [
            ("3 channels, non-square", _images(64, 3, 5, 6, g), _images(16, 3, 5, 6, g, 1.5)),
            ("a test batch of one", _images(40, 2, 4, 4, g), _images(1, 2, 4, 4, g, -0.5)),
        ]
        for name, train, test in cases:
            got = _pair(call(fn, train, test, names=("train_x", "test_x")), "standardize")
            expected = references.standardize(train, test)
            unbiased = _standardize_with(train, test, train, [0, 2, 3], unbiased=True)
            both = torch.cat([train, test])
            for i, what in enumerate(("train_x", "test_x")):
                if close(as_tensor(got[i], what), unbiased[i]):
                    continue  # the sample std (N - 1) is as good
                variants = [
                    (
                        mistake,
                        lambda fit=fit, dims=dims, u=u, j=j: _standardize_with(
                            train, test, fit, dims, unbiased=u
                        )[j],
                    )
                    for mistake, fit, dims, j in [
                        (
                            "normalization fitted on the test split: use the training split's "
                            "mean and std for both",
                            test,
                            [0, 2, 3],
                            1,
                        ),
                        (
                            "normalization fitted on train and test together: use the training "
                            "split only",
                            both,
                            [0, 2, 3],
                            i,
                        ),
                        (
                            "one mean and std for all channels: compute them per channel, over "
                            "N, H and W",
                            train,
                            [0, 1, 2, 3],
                            i,
                        ),
                        (
                            "statistics per pixel: average over N, H and W for each channel",
                            train,
                            [0],
                            i,
                        ),
                    ]
                    for u in (False, True)
                ]
                compare(f"the standardized {what}", got[i], expected[i], name, variants)
        return cases_line([c[0] for c in cases])

    return run_check("standardize", fn, body)


def _zca_with(train, test, fit, epsilon, centre=True, rotate=True, inside=True, ddof=0):
    flat = fit.reshape(len(fit), -1)
    mean = flat.mean(0) if centre else torch.zeros(flat.shape[1], dtype=flat.dtype)
    cov = (flat - mean).T @ (flat - mean) / (len(flat) - ddof)
    s, u = torch.linalg.eigh(cov)
    scale = (s.clamp_min(0) + epsilon).rsqrt() if inside else s.clamp_min(0).rsqrt() + epsilon
    w = u @ torch.diag(scale) @ u.T if rotate else u @ torch.diag(scale)
    return tuple(((x.reshape(len(x), -1) - mean) @ w).reshape(x.shape) for x in (train, test))


def zca(fn: Callable) -> Result:
    def body(fn):
        g = torch.Generator().manual_seed(5)
        mix = torch.randn(12, 12, generator=g, dtype=torch.float64) * 0.5 + torch.eye(12)
        train = (_images(300, 2, 2, 3, g).reshape(300, 12) @ mix).reshape(300, 2, 2, 3)
        test = (_images(20, 2, 2, 3, g, 1.0).reshape(20, 12) @ mix).reshape(20, 2, 2, 3)
        epsilon = 0.1
        got = _pair(call(fn, train, test, epsilon, names=("train_x", "test_x", "epsilon")), "zca")
        expected = references.zca(train, test, epsilon)
        flat = train.reshape(300, -1)
        sample_cov = _zca_with(train, test, train, epsilon, ddof=1)  # Sigma / (N - 1)
        for i, what in enumerate(("train_x", "test_x")):
            mine = as_tensor(got[i], what)
            if mine.shape == expected[i].shape and close(mine, sample_cov[i]):
                continue  # the sample covariance (N - 1) is as good
            if mine.shape == expected[i].shape and i == 0:
                # PCA whitening: right spectrum, but not rotated back (signs are arbitrary)
                c = mine.reshape(300, -1).double()
                c = c - c.mean(0)
                s = torch.linalg.eigvalsh(c.T @ c / 300)
                cov = (flat - flat.mean(0)).T @ (flat - flat.mean(0)) / 300
                target = torch.linalg.eigvalsh(cov)
                target = target / (target + epsilon)
                if not close(mine, expected[i]) and torch.allclose(s, target, atol=1e-4):
                    raise Failure(
                        "the whitened train_x differs from ZCA's, though its covariance is right",
                        "PCA whitening, not ZCA: rotate back, W = U diag(1/sqrt(S + eps)) U^T",
                    )
            variants = [
                (
                    "normalization fitted on the test split: the mean and W come from train_x",
                    lambda: _zca_with(train, test, test, epsilon)[1],
                ),
                (
                    "the data is not centred: subtract the training mean before the covariance",
                    lambda: _zca_with(train, test, train, epsilon, centre=False)[i],
                ),
                (
                    "epsilon is outside the square root: 1 / sqrt(S + epsilon)",
                    lambda: _zca_with(train, test, train, epsilon, inside=False)[i],
                ),
            ]
            compare(f"the whitened {what}", mine, expected[i], "300 images of 2x2x3", variants)
        return "matches tinyvision's reference (300 training images, 20 test images, epsilon 0.1)"

    return run_check("zca", fn, body)


def random_crop(fn: Callable) -> Result:
    def body(fn):
        b, c, h, w, size = 200, 2, 5, 7, 3
        x = torch.arange(b * c * h * w, dtype=torch.float32).view(b, c, h, w)
        got = call(fn, x, size, torch.Generator().manual_seed(0), names=("x", "size", "generator"))
        got = as_tensor(got, "the crops")
        if tuple(got.shape) != (b, c, size, size):
            raise Failure(
                f"the crops have shape {tuple(got.shape)}, expected {(b, c, size, size)} "
                f"(x of shape {(b, c, h, w)}, size {size})"
            )
        tops, lefts = [], []
        for i in range(b):
            first = int(got[i, 0, 0, 0])
            sample, rest = divmod(first, c * h * w)
            top, left = divmod(rest, w)
            window = x[i, :, top : top + size, left : left + size]
            if sample != i or window.shape != got[i].shape or not torch.equal(window, got[i]):
                raise Failure(
                    f"crop {i} is not a {size}x{size} window of image {i} "
                    f"(x of shape {(b, c, h, w)}, non-square)",
                    "rows and columns mixed up: top in 0..H-size, left in 0..W-size"
                    if h != w
                    else None,
                )
            tops.append(top)
            lefts.append(left)
        if len(set(zip(tops, lefts))) == 1:
            raise Failure(
                f"all {b} images are cropped at the same place",
                "draw a position per image: torch.randint(..., (B,), generator=generator)",
            )
        if set(tops) != set(range(h - size + 1)) or set(lefts) != set(range(w - size + 1)):
            cause = (
                "the lefts are drawn with the height's bound: left in 0..W-size, W = x.shape[3]"
                if set(lefts) == set(range(h - size + 1))
                else "the last position is never drawn: torch.randint's high is exclusive, "
                "use H - size + 1"
            )
            raise Failure(
                f"in {b} crops the tops were {sorted(set(tops))} and the lefts "
                f"{sorted(set(lefts))}, expected 0..{h - size} and 0..{w - size}",
                cause,
            )
        again = call(fn, x, size, torch.Generator().manual_seed(0))
        other = call(fn, x, size, torch.Generator().manual_seed(1))
        if not torch.equal(as_tensor(again, "the crops"), got) or torch.equal(
            as_tensor(other, "the crops"), got
        ):
            raise Failure(
                "the same seed does not give the same crops",
                "draw with the generator: torch.randint(..., generator=generator)",
            )
        one = as_tensor(call(fn, x[:1], h, torch.Generator().manual_seed(0)), "the crop")
        windows = [x[:1, :, :, left : left + h] for left in range(w - h + 1)]
        if tuple(one.shape) != (1, c, h, h) or not any(torch.equal(one, v) for v in windows):
            raise Failure(
                f"a batch of one cropped to {h} (its height): shape {tuple(one.shape)}, "
                f"expected a window of shape {(1, c, h, h)}"
            )
        return f"per-image windows, every position reached, seeded ({b} crops, a batch of one)"

    return run_check("random_crop", fn, body)


def _layer_shapes(
    model: nn.Module, x: torch.Tensor
) -> tuple[list[tuple[str, tuple]], torch.Tensor]:
    """(layer type, output shape without the batch) of each conv, pool and linear, in order."""
    seen: list[tuple[str, tuple]] = []
    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.Linear, nn.LazyLinear)

    def hook(module, inputs, output):
        seen.append((type(module).__name__.replace("Lazy", ""), tuple(output.shape[1:])))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen, out


def _describe(kind: str, shape: tuple) -> str:
    return f"{kind} {'x'.join(map(str, shape))}"


def cnn(cls: type) -> Result:
    def body(cls):
        cases = [
            ("3x32x32, a batch of two", 3, (2, 3, 32, 32)),
            ("1x28x28 crops, a batch of one", 1, (1, 1, 28, 28)),
        ]
        for name, chans, shape in cases:
            torch.manual_seed(0)
            x = torch.rand(shape)
            theirs = call(cls, chans, 10)
            if not isinstance(theirs, nn.Module):
                raise Failure(f"{cls.__name__}(...) is not an nn.Module")
            with torch.no_grad():
                expected, out = _layer_shapes(CourseCNN(chans, 10).eval(), x)
            try:
                with torch.no_grad():
                    got, got_out = _layer_shapes(theirs.eval(), x.clone())
            except Exception as error:
                if chans == 1:
                    raise Failure(
                        f"on 1x28x28 images it raised {type(error).__name__}: "
                        + " ".join(str(error).split())[:200],
                        "on 28x28 crops the last pool needs ceil_mode=True, so that fc4 still "
                        "gets 64 x 4 x 4 = 1024 values",
                    ) from None
                raise StudentError(error) from None
            if not any(kind.endswith("Pool2d") for kind, _ in got):
                # pooling written as F.max_pool2d: no module to watch, the layers around it
                # still show its output size
                expected = [e for e in expected if not e[0].endswith("Pool2d")]
            for i, (want, have) in enumerate(zip(expected, got)):
                if want != have:
                    cause = None
                    if want[0] == have[0] == "Conv2d" and have[1][1:] == tuple(
                        s - 4 for s in want[1][1:]
                    ):
                        cause = "no padding: a 5x5 convolution keeps the size with padding 2"
                    elif want[0] == have[0] == "MaxPool2d" and have[1][1] == want[1][1] - 1:
                        cause = "the last pool needs ceil_mode=True (4 x 4 on 28 x 28 crops)"
                    elif want[0] == have[0] == "MaxPool2d":
                        cause = "a 2x2 max-pool with stride 2 halves the size"
                    raise Failure(
                        f"layer {i + 1} ({name}): {_describe(*have)}, expected {_describe(*want)}",
                        cause,
                    )
            if len(got) != len(expected):
                raise Failure(
                    f"{len(got)} conv, pool and linear layers ran ({name}), expected "
                    f"{len(expected)}: " + ", ".join(_describe(*e) for e in expected)
                )
            if tuple(got_out.shape) != tuple(out.shape):
                raise Failure(
                    f"the output has shape {tuple(got_out.shape)}, expected {tuple(out.shape)} "
                    f"({name})"
                )
        theirs = call(cls, 3, 10)
        with torch.no_grad():
            theirs(torch.zeros(1, 3, 32, 32))  # sizes lazy layers
        count = sum(p.numel() for p in theirs.parameters())
        if count != 1_191_170:
            raise Failure(
                f"{count:,} parameters, expected 1,191,170 (in_chans=3, 10 classes)",
                "a bias is missing, or a layer has the wrong size" if count < 1_191_170 else None,
            )
        return "the course's layer shapes on 3x32x32 and 28x28 crops, 1,191,170 parameters"

    return run_check("cnn", cls, body)
