"""The overview's Questions: each question of the course that the report's records
answer, linked to the section holding the table, figure or number that answers it, with
the course's values and their setups beside it, and a sentence where the data, the
budget or the model differs from the course's.

Which record answers which question is `tinyvision.course` (the same lookup as
`tinyvision course ID`); the numbers are read from the records, never typed in.
"""

from __future__ import annotations

from tinyvision.course.answers import Found, found_for, setup_note
from tinyvision.course.table import QUESTIONS
from tinyvision.report.blocks import Block, Link, para, text_of
from tinyvision.report.collect import Records, Run

MAX_RESULT = 240  # characters of a record's results in one cell; the section has them all


def _target(found: Found, records: Records) -> str:
    """The key of the section showing `found`: a run inside a sweep or study shows in the
    group's section; any other run or group in its own."""
    if isinstance(found.record, Run):
        for group in records.groups:
            if any(r.path == found.record.path for r in group.runs):
                return f"group:{group.path}"
    return found.key


def _where(found: Found) -> str:
    kind, name = found.answer.kind, found.answer.name
    if kind == "command":  # a picture a command drew: fcconv, attention
        return f"{name.split()[1]}: {found.path.name}"
    if kind == "sweep":
        return f"{found.record.name} over {found.answer.swept}"
    if kind == "study":
        return f"study {name}"
    return found.path.name


def _result(found: Found) -> str:
    if found.answer.kind == "command":  # the pictures are in the linked section
        drawn = [value.rsplit("/", 1)[-1] for what, value in found.results if what == "drawn"]
        return "pictures: " + ", ".join(drawn)
    text = found.summary
    return text if len(text) <= MAX_RESULT else text[: MAX_RESULT - 1] + "…"


def _answers(found: Found) -> bool:
    """A command's record answers only once the command drew its pictures there."""
    return found.answer.kind != "command" or any(w == "drawn" for w, _ in found.results)


def questions_blocks(records: Records) -> list[Block]:
    """The Questions part of the overview; nothing when no record answers any question."""
    rows = []
    for q in QUESTIONS:
        for found in found_for(q, records):
            if not _answers(found):
                continue
            rows.append(
                (
                    f"{q.id} {q.title}",
                    Link(text_of(_where(found)), _target(found, records)),
                    text_of(_result(found)),
                    "; ".join(str(r) for r in q.references),
                    setup_note(found, q.references),
                )
            )
    if not rows:
        return []
    header = ("question", "answered in", "result here", "the course reports", "setup")
    return [
        Block("h3", "Questions"),
        para(
            "The course's questions these records answer, each linked to the section that "
            "answers it, beside the values the course's reports give and their setups. "
            "`tinyvision course ID` shows one question with every command that answers it."
        ),
        Block("table", header=header, rows=tuple(rows)),
    ]
