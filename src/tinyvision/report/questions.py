"""The overview's Questions: each question of the course that the report's records
answer, linked to the section holding the table, figure or number that answers it, with
the course's values and their setups beside it, and a sentence where the data, the
budget or the model differs from the course's.

Which record answers which question is `tinyvision.course` (the same lookup as
`tinyvision course ID`); the numbers are read from the records, never typed in.
"""

from __future__ import annotations

import re

from tinyvision.errors import UserError
from tinyvision.experiment.folder import LAYERS
from tinyvision.records_read import read_text
from tinyvision.report.blocks import Block, Code, Link, para, text_of
from tinyvision.report.collect import Records, Run, practical_of
from tinyvision.syllabus.answers import Found, found_for, setup_note
from tinyvision.syllabus.table import QUESTIONS, SUMMARY_CNN, Question

COURSE_INPUT = "3x32x32"  # the input the course counts the CNN's weights for

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
    """A command's record answers only once the command drew its pictures there, and the
    report holds them (a damaged picture is left out, so it answers nothing)."""
    if found.answer.kind != "command":
        return True
    shown = {f.name for f in found.record.figures}
    drawn = [value.rsplit("/", 1)[-1] for what, value in found.results if what == "drawn"]
    return any(name in shown for name in drawn)


def _cnn_table(records: Records) -> tuple[Run, str, str] | None:
    """The first course-CNN run's recorded layer table: (run, its input, its parameters)."""
    grouped = {r.path for g in records.groups for r in g.runs}
    firsts = [g.runs[0] for g in records.groups if g.runs]
    for run in [*(r for r in records.runs if r.path not in grouped), *firsts]:
        if run.model != "cnn" or not (run.path / LAYERS).is_file():
            continue
        try:
            text = read_text(run.path / LAYERS)
        except UserError:
            continue  # the report's layer tables list it as skipped
        shape = re.match(r"input (\d+x\d+x\d+)\n", text)
        params = re.search(r"^parameters: ([\d,]+)$", text, flags=re.M)
        if shape and params:
            return run, shape[1], params[1]
    return None


def _layer_row(q: Question, table: tuple[Run, str, str], first: bool) -> tuple:
    """A question `summary cnn` answers, from the layer table a CNN run recorded."""
    run, shape, params = table
    note = ""
    if shape != COURSE_INPUT and not first:
        note = f"As above: {shape} inputs."
    elif shape != COURSE_INPUT:
        note = (
            f"This table is for {shape} inputs, not the course's {COURSE_INPUT}: the weights "
            "after the convolutions differ (tinyvision summary cnn shows the course's)."
        )
    practical = practical_of(run.preset, run.model)
    return (
        f"{q.id} {q.title}",
        Link(text_of(f"layer table: {run.path.name}"), f"models:{practical}"),
        text_of(f"{params} parameters on {shape}"),
        "; ".join(str(r) for r in q.references),
        note,
    )


def questions_blocks(records: Records) -> list[Block]:
    """The Questions part of the overview; nothing when no record answers any question."""
    rows = []
    cnn, layer_rows = _cnn_table(records), 0
    for q in QUESTIONS:
        if cnn and any(a.name == SUMMARY_CNN for a in q.answers):
            rows.append(_layer_row(q, cnn, first=not layer_rows))
            layer_rows += 1
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
            "answers it, beside the values the course's reports give and their setups. ",
            Code("tinyvision course ID"),
            " shows one question with every command that answers it.",
        ),
        Block("table", header=header, rows=tuple(rows), prose=True),
    ]
