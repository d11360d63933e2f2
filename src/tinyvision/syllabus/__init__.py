"""The course's questions, each with what answers it: `tinyvision course` and `tv.course()`.

`table` holds the questions; `lookup` finds them by id, alias or practical; `answers`
reads what a records folder holds for a question; `view` is what the command and
`tv.course()` show. (Named for the course's syllabus, not `course`, so that importing it
never hides the API's `tv.course` function behind a package of the same name.)
"""

from tinyvision.syllabus.table import QUESTIONS, Answer, Question, Reference

__all__ = ["QUESTIONS", "Answer", "Question", "Reference"]
