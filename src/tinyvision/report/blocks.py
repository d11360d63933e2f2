"""What a report is made of: blocks (headings, paragraphs, tables, figures, folds) built
once from the records and rendered twice, as HTML and as Markdown (`report.html`), and
the formatting of recorded values into the text they show."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tinyvision.records_read import printable
from tinyvision.report.collect import Figure


@dataclass(frozen=True)
class Code:
    """A paragraph part shown as code: a preset, overrides, a folder name."""

    text: str


@dataclass(frozen=True)
class Link:
    """A link to another block of the report: the one whose `key` is `target` (a run's or a
    group's section). Rendered as plain text when no block has that key."""

    text: str
    target: str


Part = str | Code | Link


@dataclass
class Block:
    # h1, h2, h3, p, table, figure, pre; toc (the contents: the headings that follow);
    # details ... /details (folded: `text` is what shows while it is closed)
    kind: str
    text: str = ""  # headings, pre, figure captions
    parts: tuple[Part, ...] = ()  # p
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str | Link, ...], ...] = ()  # a cell is text, or a link
    figure: Figure | None = None
    key: str = ""  # what a Link names to lead here: `run:<folder>`, `group:<folder>`
    prose: bool = False  # a table of sentences rather than numbers: its cells align left


def para(*parts: Part) -> Block:
    return Block("p", parts=parts)


def pct(value: Any) -> str:
    """A percentage to two places; "" for what is not a number or not measured (NaN)."""
    try:
        return f"{float(value):.2f}%" if math.isfinite(float(value)) else ""
    except (TypeError, ValueError, OverflowError):
        return ""


def num(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value):,.{digits}f}" if math.isfinite(float(value)) else ""
    except (TypeError, ValueError, OverflowError):
        return ""


def setting(value: Any) -> str:
    """A swept or searched value as a reader wants it: 0.031622776601683794 as 0.0316,
    whole numbers and words unchanged."""
    text = text_of(value)
    try:
        number = float(text)
    except (ValueError, OverflowError):
        return text
    if not any(c in text for c in ".eE") or number != number:  # an integer, or nan
        return text
    return f"{number:.4g}"


def text_of(value: Any) -> str:
    """A record's field as one line of text, whatever type it turned out to be."""
    return printable("" if value is None else value)
