"""The course's questions, each with what answers it; `tinyvision course` and `tv.course()`.

`table` holds the questions; `lookup` finds them by id, alias or practical; `answers`
reads what a records folder holds for a question; `view` is what the command and
`tv.course()` show. As with `tv.runs`, importing any submodule makes this package the
attribute `tinyvision.course`, so the package itself is callable: `tv.course("1cd.Q16")`.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

from tinyvision.course.table import QUESTIONS, Answer, Question, Reference

__all__ = ["QUESTIONS", "Answer", "Question", "Reference"]


class _CallablePackage(types.ModuleType):
    def __call__(self, which: str | None = None, *, out: str | Path = "runs"):
        """`tinyvision.api.course`: the questions, or one with what answers it."""
        from tinyvision.course.view import show

        return show(which, Path(out))


sys.modules[__name__].__class__ = _CallablePackage
