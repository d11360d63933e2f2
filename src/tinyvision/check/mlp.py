"""Checks of practical 1-ab's pieces: the MLP's parameters, forward, loss, backward, SGD."""

from __future__ import annotations

from collections.abc import Callable

import torch

from tinyvision.check.core import (
    Failure,
    Result,
    StudentError,
    as_tensor,
    call,
    cases_line,
    compare,
    run_check,
)
from tinyvision.models import mlp_manual as ref

KEYS = ("Wh", "bh", "Wy", "by")
OUTPUT_KEYS = ("X", "htilde", "h", "ytilde", "yhat")

# (what the case is called, N, nx, nh, ny, scale of Wy): square sizes first, so that
# transposed weights give a wrong value (which can be named) rather than a shape error.
CASES = [
    ("square weights", 5, 4, 4, 4, 1.0),
    ("a batch of one", 1, 2, 10, 2, 1.0),
    ("large logits", 6, 3, 8, 4, 400.0),
    ("non-square sizes", 7, 3, 6, 5, 1.0),
]


def _params(nx: int, nh: int, ny: int, scale: float, g: torch.Generator) -> dict:
    p = {
        "Wh": torch.randn(nh, nx, generator=g, dtype=torch.float64),
        "bh": torch.randn(nh, generator=g, dtype=torch.float64) * 0.5,
        "Wy": torch.randn(ny, nh, generator=g, dtype=torch.float64),
        "by": torch.randn(ny, generator=g, dtype=torch.float64) * 0.5,
    }
    p["Wy"] *= scale
    return p


def _data(n: int, nx: int, ny: int, g: torch.Generator):
    X = torch.randn(n, nx, generator=g, dtype=torch.float64)
    labels = torch.randint(0, ny, (n,), generator=g)
    return X, torch.nn.functional.one_hot(labels, ny).double()


def _cases():
    g = torch.Generator().manual_seed(0)
    for name, n, nx, nh, ny, scale in CASES:
        params = _params(nx, nh, ny, scale, g)
        X, Y = _data(n, nx, ny, g)
        yield name, params, X, Y


def _dict(value, what: str, keys) -> dict:
    if not isinstance(value, dict):
        raise Failure(f"{what} is a {type(value).__name__}, expected a dict with keys {keys}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise Failure(f"{what} has no {', '.join(repr(k) for k in missing)} (expected {keys})")
    return value


def init_params(fn: Callable) -> Result:
    def body(fn):
        torch.manual_seed(0)
        params = _dict(call(fn, 3, 7, 2), "init_params(3, 7, 2)", KEYS)
        shapes = {"Wh": (7, 3), "bh": (7,), "Wy": (2, 7), "by": (2,)}
        for key, shape in shapes.items():
            got = tuple(as_tensor(params[key], key).shape)
            if got != shape:
                transposed = len(shape) == 2 and got == shape[::-1]
                raise Failure(
                    f"{key} has shape {got}, expected {shape} (init_params(nx=3, nh=7, ny=2))",
                    "weights transposed: rows index outputs, as in nn.Linear"
                    if transposed
                    else None,
                )
        big = _dict(call(fn, 400, 300, 50), "init_params(400, 300, 50)", KEYS)
        weights = as_tensor(big["Wh"], "Wh").double()
        if float(weights.std()) < 1e-8:
            raise Failure(
                "every weight of Wh has the same value",
                "equal weights never break the symmetry: draw them at random",
            )
        std = float(weights.std())
        if not 0.27 < std < 0.33 or abs(float(weights.mean())) > 0.02:
            raise Failure(
                f"Wh's weights have mean {float(weights.mean()):.3f} and std {std:.3f}, "
                "expected N(0, 0.3)",
                "multiply torch.randn(...) by 0.3" if abs(std - 1) < 0.05 else None,
            )
        return "the shapes and N(0, 0.3) weights of the course"

    return run_check("init_params", fn, body)


def _outputs_variants(params, X):
    Wh, bh, Wy, by = (params[k] for k in KEYS)
    h = torch.tanh(X @ Wh.T + bh)
    return [
        (
            "weights transposed: h~ = X Wh^T + bh and y~ = h Wy^T + by (rows index outputs)",
            lambda: torch.softmax(torch.tanh(X @ Wh + bh) @ Wy + by, 1),
        ),
        (
            "the SoftMax is taken over the batch (dim=0), not over each row's classes (dim=1)",
            lambda: torch.softmax(h @ Wy.T + by, 0),
        ),
        ("the SoftMax is missing: yhat = SoftMax(y~)", lambda: h @ Wy.T + by),
        (
            "tanh is missing on the hidden layer",
            lambda: torch.softmax((X @ Wh.T + bh) @ Wy.T + by, 1),
        ),
    ]


def forward(fn: Callable) -> Result:
    def body(fn):
        names = []
        for name, params, X, _ in _cases():
            got = call(fn, params, X, names=("params", "X"))
            if not (isinstance(got, tuple) and len(got) == 2):
                raise Failure("forward must return two things: (yhat, outputs)")
            yhat, outputs = got
            expected, ref_outputs = ref.forward(params, X)
            variants = _outputs_variants(params, X)
            if name == "large logits":
                got_t = as_tensor(yhat, "yhat")
                if got_t.shape == expected.shape and not torch.isfinite(got_t).all():
                    raise Failure(
                        f"yhat holds nan or inf ({name})",
                        "softmax overflow on large logits: exp(y~) overflows; subtract each "
                        "row's max from y~ first (the SoftMax does not change)",
                    )
            compare("yhat", yhat, expected, name, variants)
            outputs = _dict(outputs, "outputs", OUTPUT_KEYS)
            for key in OUTPUT_KEYS:
                compare(f'outputs["{key}"]', outputs[key], ref_outputs[key], name)
            names.append(name)
        return cases_line(names)

    return run_check("forward", fn, body)


def loss_accuracy(fn: Callable) -> Result:
    def body(fn):
        g = torch.Generator().manual_seed(1)
        names = []
        for name, n, ny in [
            ("a batch of 8", 8, 3),
            ("a batch of one", 1, 4),
            ("10 classes", 6, 10),
        ]:
            logits = torch.randn(n, ny, generator=g, dtype=torch.float64) * 2
            Yhat = torch.softmax(logits, 1)
            _, Y = _data(n, 1, ny, g)
            got = call(fn, Yhat, Y, names=("Yhat", "Y"))
            if not (isinstance(got, tuple) and len(got) == 2):
                raise Failure("loss_accuracy must return two things: (loss, accuracy)")
            loss, acc = ref.loss_accuracy(Yhat, Y)
            per_row = -(Y * Yhat.log()).sum(1)
            got_loss = as_tensor(got[0], "the loss")
            if got_loss.numel() != 1:
                raise Failure(
                    f"the loss has shape {tuple(got_loss.shape)}, expected a scalar ({name})",
                    "one loss per sample: take the mean over the batch"
                    if got_loss.numel() == n
                    else None,
                )
            compare(
                "the loss",
                got_loss.reshape(()),
                loss,
                name,
                [
                    ("the loss is summed over the batch: take the mean (1/N)", per_row.sum),
                    (
                        "the loss is averaged over the classes too: sum over j, mean over i",
                        lambda: -(Y * Yhat.log()).mean(),
                    ),
                    ("the minus sign is missing: L = - sum Y log Yhat", lambda: -per_row.mean()),
                ],
            )
            compare(
                "the accuracy",
                as_tensor(got[1], "the accuracy").double().reshape(()),
                acc.double(),
                name,
                [("the accuracy is in percent: return a fraction in [0, 1]", lambda: acc * 100)],
            )
            names.append(name)
        return cases_line(names)

    return run_check("loss_accuracy", fn, body)


def _grad_variants(params, outputs, Y, key):
    summed = ref.backward(params, outputs, Y, reduction="sum")
    n = len(Y)
    delta_y = (outputs["yhat"] - Y) / n
    wrong_tanh = (delta_y @ params["Wy"]) * (1 - outputs["htilde"] ** 2)
    return [
        (
            "gradients not divided by the batch size: dL/dy~ = (Yhat - Y) / N",
            lambda: summed[key],
        ),
        (
            "weights transposed: dWy = (dL/dy~)^T h and dWh = (dL/dh~)^T X have the "
            "weights' shapes",
            lambda: ref.backward(params, outputs, Y)[key].T if key.startswith("W") else None,
        ),
        (
            "tanh' uses h~: it is 1 - h^2 with h = tanh(h~)",
            lambda: {"Wh": wrong_tanh.T @ outputs["X"], "bh": wrong_tanh.sum(0)}[key],
        ),
        (
            "the bias gradient is missing: sum dL/dy~ (or dL/dh~) over the batch",
            lambda: torch.zeros_like(params[key]) if key.startswith("b") else None,
        ),
    ]


def backward(fn: Callable) -> Result:
    def body(fn):
        names = []
        for name, params, X, Y in _cases():
            _, outputs = ref.forward(params, X)
            got = call(fn, params, outputs, Y, names=("params", "outputs", "Y"))
            if isinstance(got, dict):
                missing = [k for k in KEYS if k not in got]
                if missing:
                    bias = [k for k in missing if k.startswith("b")]
                    raise Failure(
                        f"the gradients have no {', '.join(missing)}",
                        "a missing bias gradient: dby and dbh are the sums over the batch of "
                        "dL/dy~ and dL/dh~"
                        if bias
                        else None,
                    )
            grads = _dict(got, "the gradients", KEYS)
            expected = ref.backward(params, outputs, Y)
            for key in ("Wy", "by", "Wh", "bh"):
                compare(
                    f"the gradient of {key}",
                    grads[key],
                    expected[key],
                    name,
                    _grad_variants(params, outputs, Y, key),
                )
            names.append(name)
        return cases_line(names)

    return run_check("backward", fn, body)


def sgd(fn: Callable) -> Result:
    def body(fn):
        g = torch.Generator().manual_seed(2)
        names = []
        for name, (nx, nh, ny), eta in [
            ("eta 0.1", (2, 10, 2), 0.1),
            ("eta 0.03, non-square", (3, 5, 4), 0.03),
        ]:
            params = _params(nx, nh, ny, 1.0, g)
            grads = _params(nx, nh, ny, 1.0, g)
            mine = {k: v.clone() for k, v in params.items()}
            try:
                got = fn(mine, {k: v.clone() for k, v in grads.items()}, eta)
            except Exception as error:
                raise StudentError(error) from None
            updated = _dict(got if isinstance(got, dict) else mine, "the parameters", KEYS)
            for key in KEYS:
                compare(
                    f"the new {key}",
                    updated[key],
                    params[key] - eta * grads[key],
                    name,
                    [
                        (
                            "a step up the gradient: p <- p - eta * grad",
                            lambda key=key: params[key] + eta * grads[key],
                        ),
                        (
                            "eta is not used: p <- p - eta * grad",
                            lambda key=key: params[key] - grads[key],
                        ),
                        (
                            "nothing was updated: return the new parameters",
                            lambda key=key: params[key],
                        ),
                    ],
                )
            names.append(name)
        # grads are the caller's: changing them is a mistake
        params, grads = _params(2, 3, 2, 1.0, g), _params(2, 3, 2, 1.0, g)
        call(fn, params, grads, 0.1, names=("params", "grads", "eta"), keep=("params",))
        return cases_line(names)

    return run_check("sgd", fn, body)
