"""What `tinyvision course` and `tv.course()` show: the list of questions, or one question
with what answers it, the course's values with their setups, and what the records hold.

A question answered by `tinyvision summary cnn` gets its numbers computed at once from
the course CNN itself (the model tinyvision builds, counted by `models.summary`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tinyvision.records_read import printable
from tinyvision.syllabus.answers import Found, found_for, read_records, setup_note
from tinyvision.syllabus.lookup import find, practical, questions
from tinyvision.syllabus.table import SUMMARY_CNN, Question

if TYPE_CHECKING:
    import pandas as pd

LIST_COLUMNS = ("id", "part", "title", "kinds", "answered by")


def answered_by(q: Question) -> list[str]:
    """The commands that answer `q`, then its notebook section."""
    return [a.command for a in q.answers] + [f"notebook {q.notebook}: {q.section}"]


def listing(of: str | None = None) -> pd.DataFrame:
    """The questions (of one practical) as a DataFrame, one row each."""
    import pandas as pd

    rows = [
        (
            q.id + (f" ({q.alias})" if q.alias else ""),
            q.part,
            q.title,
            ", ".join(q.kinds),
            "; ".join(a.command for a in q.answers) or f"notebook {q.notebook}",
        )
        for q in questions(of)
    ]
    return pd.DataFrame(rows, columns=list(LIST_COLUMNS))


def live_lines(what: str) -> list[str]:
    """Numbers computed now from the course CNN on 3x32x32 (what `summary cnn` prints)."""
    from tinyvision.config import Config, apply_overrides
    from tinyvision.models import create_model
    from tinyvision.models.summary import summarize

    shape = (3, 32, 32)
    cfg = apply_overrides(Config(), ["model.name=cnn"]).validate()
    rows = summarize(create_model(cfg.model, shape, 10), shape)
    total = sum(r.weights + r.biases for r in rows)
    if what == "params":
        fc4 = next(r for r in rows if r.name.endswith("fc4"))
        share = 100 * (fc4.weights + fc4.biases) / total
        return [
            f"{total:,} parameters (weights and biases) on a 3x32x32 input; "
            f"fc4 holds {fc4.weights + fc4.biases:,} of them ({share:.1f}%)"
        ]
    if what == "receptive":
        return [
            "receptive fields (input pixels): "
            + ", ".join(
                f"{r.name.split('.')[-1]} {r.receptive_field}"
                for r in rows
                if r.receptive_field is not None and r.kind != "ReLU"
            )
        ]
    shown = [r for r in rows if r.weights or r.kind.endswith("Pool2d")]
    return [
        f"{r.name.split('.')[-1]}: output {'x'.join(map(str, r.output))}, "
        f"{r.weights + r.biases:,} weights and biases"
        for r in shown
    ] + [f"total {total:,}"]


@dataclass
class QuestionView:
    """One question: what it asks, what answers it, the course's values, the records."""

    question: Question
    out: Path
    found: list[Found] = field(default_factory=list)
    live: list[str] = field(default_factory=list)  # computed now (summary cnn)
    skipped: list[str] = field(default_factory=list)  # records left out, with why

    def lines(self) -> list[str]:
        q = self.question
        alias = f" ({q.alias})" if q.alias else ""
        out = [
            f"{q.id}{alias}  {q.title}   [{q.practical}, {q.part}]",
            q.asks,
            f"answer: {', '.join(q.kinds)}",
            "answered by:",
            *(f"  {line}" for line in answered_by(q)),
        ]
        if q.references:
            out.append("the course reports:")
            out += [f"  {r.value} — {r.setup}" for r in q.references]
        if self.live:
            out.append(f"computed now ({SUMMARY_CNN}):")
            out += [f"  {line}" for line in self.live]
        if any(a.kind != "command" or "RUN_FOLDER" in a.name for a in q.answers):
            out.append(f"under {printable(self.out)}:")
            if not self.found:
                first = q.answers[0].command
                out.append(f"  nothing recorded yet; `{first} --out {printable(self.out)}` runs it")
            for f in self.found:
                out += [f"  {line}" for line in _found_lines(f, q)]
        if self.skipped:
            out.append(
                f"  ({len(self.skipped)} records left out as unreadable; "
                "`tinyvision report` lists them)"
            )
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return f"QuestionView({self.question.id}: {len(self.found)} records found)"

    def _repr_html_(self) -> str:
        """For a notebook: the same lines, escaped (records are untrusted text)."""
        return "<pre>" + html.escape(str(self)) + "</pre>"


def _found_lines(f: Found, q: Question) -> list[str]:
    epochs = sorted(set(f.epochs))
    budget = ""
    if epochs:
        span = f"{epochs[0]}" + (f"-{epochs[-1]}" if len(epochs) > 1 else "")
        budget = f", {span} epoch{'s' if epochs != [1] else ''}"
    if f.answer.kind == "sweep":
        head = f"sweep of {f.answer.name} over {f.answer.swept}"
    elif f.answer.kind == "command":
        head = f"a {f.model} run for `{' '.join(f.answer.name.split()[:2])}`"
    else:
        head = f"{f.answer.kind} {f.answer.name}"
    lines = [printable(f"{head} ({f.path}): {f.data or '?'}{budget}")]
    lines += [printable(f"  {what} {value}" if what else f"  {value}") for what, value in f.results]
    note = setup_note(f, q.references)
    if note:
        lines.append(f"  {note}")
    return lines


def show(which: str | None = None, out: Path = Path("runs")) -> pd.DataFrame | QuestionView:
    """The listing (a DataFrame) for nothing or a practical; a QuestionView for an id."""
    if which is None or practical(which) is not None:
        return listing(which)
    q = find(which)
    records = read_records(out)
    live = []
    for answer in q.answers:
        if answer.live:
            live += live_lines(answer.live)
    return QuestionView(q, out, found_for(q, records), live, records.skipped)
