"""Finding questions: by practical (`1cd`, `1-cd`), id (`1cd.Q16`) or alias (`1e.multihead`)."""

from __future__ import annotations

import difflib
import re

from tinyvision.errors import UserError
from tinyvision.records_read import printable
from tinyvision.syllabus.table import PRACTICALS, QUESTIONS, Question, Reference


def _key(text: str) -> str:
    """`1-CD.q16`, `1cd-Q16` and `1cd.Q16` are the same question."""
    text = text.strip().lower()
    text = re.sub(r"^1-(ab|cd|e)", r"1\1", text)
    return re.sub(r"^(1(?:ab|cd|e))[-_ ]", r"\1.", text)


def practical(text: str) -> str | None:
    """`1-cd`/`1cd` as the practical's name (`1-cd`); None when it is no practical."""
    return PRACTICALS.get(_key(text))


def _index() -> dict[str, Question]:
    found = {}
    for q in QUESTIONS:
        found[_key(q.id)] = q
        if q.alias:
            found[_key(q.alias)] = q
    return found


def questions(of: str | None = None) -> list[Question]:
    """Every question, or a practical's (`1ab`, `1-cd`...), in the course's order."""
    if of is None:
        return list(QUESTIONS)
    name = practical(of)
    if name is None:
        raise UserError(f"unknown practical '{printable(of)}'; choose 1ab, 1cd or 1e")
    return [q for q in QUESTIONS if q.practical == name]


def find(which: str) -> Question:
    """The question with this id or alias; an unknown one is a one-line error with the
    closest ids."""
    index = _index()
    key = _key(which)
    if key in index:
        return index[key]
    names = [q.id for q in QUESTIONS] + [q.alias for q in QUESTIONS if q.alias]
    close = difflib.get_close_matches(key, [_key(n) for n in names], n=3, cutoff=0.6)
    shown = [next(n for n in names if _key(n) == c) for c in close]
    hint = f"did you mean {', '.join(shown)}? " if shown else ""
    raise UserError(
        f"unknown question '{printable(which)[:60]}'; {hint}"
        "(`tinyvision course` lists them, `tinyvision course 1cd` one practical's)"
    )


def references_for(preset: str = "", study: str = "", step: str = "") -> list[Reference]:
    """The course's values measured in the setup a preset runs, or a study's step runs
    (its own `study/step` values; else its preset's, when the step changes nothing)."""
    from tinyvision.studies import STUDIES

    wanted = {preset} if preset else set()
    if study:
        wanted.add(f"{study}/{step}")
        for label, step_preset, overrides in getattr(STUDIES.get(study), "steps", ()):
            if label == step and not overrides:
                wanted.add(step_preset)
    found = [r for q in QUESTIONS for r in q.references if r.preset and r.preset in wanted]
    return list(dict.fromkeys(found))
