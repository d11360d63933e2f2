"""What every check shares: calling the student's code safely, comparing, the result.

A check runs the student's piece on seeded inputs it builds itself (copies: the
student's objects are never touched; the global random state is restored afterwards),
under a time limit, and compares what comes back with tinyvision's reference. A
difference stops the check with a `Failure`: one line saying what differs, and a
second naming the likely cause when the answer equals a known wrong variant.
"""

from __future__ import annotations

import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tinyvision.check.pieces import PIECES

TIME_LIMIT_S = 10.0  # per check call; TINYVISION_CHECK_TIME_LIMIT overrides (grade sets it)
RTOL, ATOL = 1e-4, 1e-5  # float64 inputs: the known mistakes differ by far more than this

_LIBRARY = (
    str(Path(__file__).resolve().parents[1]),  # tinyvision itself
    str(Path(torch.__file__).resolve().parents[1]),  # site-packages: torch, numpy, ...
    str(Path(os.__file__).resolve().parent),  # the standard library
)

# The last object each check was given, by check name: what `tinyvision grade` grades
# (a failed check rebinds the notebook's name to the reference).
submitted: dict[str, Any] = {}


class Failure(Exception):
    """The piece's answer differs: what differs, and (optionally) the likely cause."""

    def __init__(self, what: str, cause: str | None = None):
        super().__init__(what)
        self.what, self.cause = what, cause


class StudentError(Exception):
    """An exception raised inside the student's code."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class CheckTimeout(BaseException):  # not an Exception: a student's `except Exception` lets it by
    pass


@dataclass
class Result:
    """A check's verdict. Printed: one line ✔, or one or two lines saying what is wrong."""

    check: str
    status: str  # passed, failed, missing
    lines: list[str]
    submitted: Any = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def reason(self) -> str:
        """The lines as one line, for a grades table."""
        return " / ".join(line.strip() for line in self.lines)

    def __str__(self) -> str:
        return "\n".join(self.lines)

    __repr__ = __str__

    def use(self) -> Any:
        """Print the verdict; the student's piece if it passed, else tinyvision's reference."""
        print(self)
        if self.passed:
            return self.submitted
        name = PIECES[self.check].name
        print(f"  → the rest of this notebook uses tinyvision's {name}")
        return reference(self.check)

    def __bool__(self) -> bool:
        return self.passed


def reference(check: str) -> Any:
    """tinyvision's own implementation of a piece ("module:attribute" in the table)."""
    import importlib

    module, _, attribute = PIECES[check].reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def time_limit_s() -> float:
    try:
        return float(os.environ.get("TINYVISION_CHECK_TIME_LIMIT", TIME_LIMIT_S))
    except ValueError:
        return TIME_LIMIT_S


@contextmanager
def time_limit(seconds: float):
    """Raise CheckTimeout after `seconds` (main thread only: where signals are delivered)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if seconds <= 0 or not usable:
        yield
        return

    def expire(signum, frame):
        raise CheckTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _is_library(filename: str) -> bool:
    if filename.startswith("<frozen"):
        return True
    path = os.path.realpath(filename)
    return any(path.startswith(root + os.sep) for root in _LIBRARY)


def student_line(error: BaseException) -> str | None:
    """Where in the student's code the error arose: the deepest frame outside the libraries."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if not _is_library(frame.filename):
            where = Path(frame.filename).name
            # IPython runs each cell from a file of its own: "your cell" says more than its name
            place = "your cell" if "ipykernel" in frame.filename else where
            code = f": {frame.line.strip()}" if frame.line else ""
            return f"line {frame.lineno} of {place}{code}"
    return None


def clone(value: Any) -> Any:
    """A deep copy of tensors held in dicts, lists and tuples (what we hand the student)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(clone(v) for v in value)
    return value


def same(a: Any, b: Any) -> bool:
    """Exactly equal, tensors included (to see whether an input was modified)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def call(fn: Callable, *args: Any, names: Sequence[str] = (), keep: Iterable[str] = ()) -> Any:
    """The student's fn on copies of args; their exceptions as StudentError.

    An argument the piece is not meant to change (all but those named in `keep`) is
    compared after the call: changing it in place is reported.
    """
    copies = [clone(a) for a in args]
    try:
        result = fn(*copies)
    except Exception as error:
        raise StudentError(error) from None
    for i, (before, after) in enumerate(zip(args, copies)):
        name = names[i] if i < len(names) else f"argument {i + 1}"
        if name not in keep and not same(before, after):
            raise Failure(
                f"it changed its input {name} in place",
                "compute new tensors (x = x - m, not x -= m) and leave the inputs as they were",
            )
    return result


def as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    try:
        return torch.as_tensor(value)
    except Exception:
        raise Failure(f"{what} is a {type(value).__name__}, not a tensor") from None


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.double(), b.double()
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=RTOL, atol=ATOL))


def compare(
    what: str,
    got: Any,
    expected: torch.Tensor,
    case: str,
    variants: Iterable[tuple[str, Callable[[], torch.Tensor | None]]] = (),
) -> None:
    """Raise Failure unless `got` equals `expected`: the shape, or the largest error.

    `variants`: (the mistake, a function computing its answer). The first one the answer
    equals is named as the likely cause.
    """
    got = as_tensor(got, what)
    cause = None
    for mistake, compute in variants:
        try:
            wrong = compute()
        except Exception:  # a variant that does not apply to these shapes
            continue
        if wrong is not None and wrong.shape == got.shape and close(got, wrong):
            cause = mistake
            break
    if tuple(got.shape) != tuple(expected.shape):
        raise Failure(
            f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)} ({case})",
            cause,
        )
    if not torch.isfinite(got.double()).all() and torch.isfinite(expected.double()).all():
        raise Failure(f"{what} holds nan or inf ({case})", cause)
    if not close(got, expected):
        error = (got.double() - expected.double()).abs()
        error = torch.nan_to_num(error, nan=float("inf"))
        index = tuple(int(i) for i in torch.unravel_index(error.argmax(), error.shape))
        where = f" at {list(index)}" if index else ""
        raise Failure(
            f"{what} differs: largest error {float(error.max()):.3g}{where} ({case})", cause
        )


def run_check(check: str, piece: Any, body: Callable[[Any], str]) -> Result:
    """Run `body(piece)` (which returns the ✔ line's detail) and turn the outcome into a Result."""
    name = PIECES[check].name
    submitted[check] = piece
    if piece is None:
        return Result(check, "missing", [f"… {name}: not defined"], piece)
    if piece is reference(check):
        return Result(check, "missing", [f"… {name}: this is tinyvision's own, not yours"], piece)
    limit = time_limit_s()
    try:
        with torch.random.fork_rng(devices=[]), time_limit(limit):
            detail = body(piece)
    except StudentError as e:
        error = e.error
        if isinstance(error, NotImplementedError):
            return Result(check, "missing", [f"… {name}: not implemented yet"], piece)
        message = " ".join(str(error).split())[:300]
        lines = [f"✘ {name} raised {type(error).__name__}: {message}"]
        where = student_line(error)
        if where:
            lines.append(f"  at {where}")
        return Result(check, "failed", lines, piece)
    except Failure as f:
        lines = [f"✘ {name}: {f.what}"]
        if f.cause:
            lines.append(f"  likely cause: {f.cause}")
        return Result(check, "failed", lines, piece)
    except CheckTimeout:
        return Result(
            check,
            "failed",
            [f"✘ {name}: took longer than {limit:g} s on tiny inputs (an endless loop?)"],
            piece,
        )
    except Exception as e:  # the answer is of a form the check cannot read
        return Result(
            check,
            "failed",
            [f"✘ {name}: its answer could not be read ({type(e).__name__}: {e})"],
            piece,
        )
    return Result(check, "passed", [f"✔ {name}: {detail}"], piece)


def cases_line(cases: Sequence[str]) -> str:
    return f"matches tinyvision's reference ({len(cases)} cases: {'; '.join(cases)})"
