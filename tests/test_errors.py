"""One way to turn an exception into the reason of a one-line error."""

from __future__ import annotations

from pathlib import Path

from tinyvision.errors import first_line

SRC = Path(__file__).parents[1] / "src" / "tinyvision"


def test_first_line():
    assert first_line(ValueError("\n  bad shape \nmore detail")) == "bad shape"
    assert first_line(ValueError("x" * 500)) == "x" * 160
    assert first_line(ValueError("x" * 500), limit=10) == "x" * 10
    assert first_line(KeyError()) == "KeyError"
    assert first_line(OSError(""), default="") == ""


def test_the_first_line_idiom_is_written_once():
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for idiom in (".splitlines()[0]", "])[0][:"):
            assert idiom not in text, f"{path.relative_to(SRC)}: use errors.first_line"
