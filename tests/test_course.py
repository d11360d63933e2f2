"""The course as data: every question of the map listed, each pointing at something that
exists, and `tinyvision course ID` answering from the records under --out."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from tinyvision.cli import build_parser, main, parse
from tinyvision.presets import all_presets, build_config
from tinyvision.studies import STUDIES
from tinyvision.syllabus.lookup import find, questions
from tinyvision.syllabus.table import KINDS, NOTEBOOKS, QUESTIONS

ROOT = Path(__file__).parents[1]
# The course map lives beside the project, not in it: its sentences are the course's.
MAP = Path(os.environ.get("TINYVISION_COURSE_MAP", ROOT.parent / "shared/course/questions.md"))
SECTIONS = {"1ab": "# 1-ab", "1cd": "# 1-cd", "1e": "# 1-e"}
ID = re.compile(r"\b1(?:ab|cd|e)\.[QBE]\d+\b")


def map_ids() -> list[str]:
    """The map's bold question ids (`- **Q16 ...`), each prefixed by its practical."""
    if not MAP.is_file():
        pytest.skip(f"the course map {MAP} is absent (set TINYVISION_COURSE_MAP to it)")
    text, ids = MAP.read_text(), []
    starts = {key: text.index(f"\n{head} ") for key, head in SECTIONS.items()}
    bounds = sorted(starts.items(), key=lambda kv: kv[1]) + [("", len(text))]
    for (key, start), (_, end) in zip(bounds, bounds[1:]):
        found = re.findall(r"^- \*\*([QBE]\d+)\b", text[start:end], flags=re.M)
        ids += [f"{key}.{q}" for q in found]
    return ids


def test_every_question_of_the_map_is_listed(capsys):
    expected = map_ids()
    assert len(expected) == 17 + 6 + 34 + 17  # 1-ab Q1-Q17 and B1-B6, 1-cd Q1-Q34, 1-e E1-E17
    assert main(["course"]) == 0
    out = capsys.readouterr().out
    assert ID.findall(out) == expected, "every question, once, in the course's order"
    assert f"{len(expected)} questions" in out
    for key in SECTIONS:
        assert main(["course", key.replace("1", "1-")]) == 0  # 1-cd as well as 1cd
        mine = ID.findall(capsys.readouterr().out)
        assert mine == [i for i in expected if i.startswith(key + ".")]


def test_the_table_is_in_the_course_order_and_well_formed():
    ids = [q.id for q in QUESTIONS]
    aliases = [q.alias for q in QUESTIONS if q.alias]
    assert len(set(ids + aliases)) == len(ids) + len(aliases)
    order = [(q.practical, q.id.split(".")[1][0], int(q.id.split(".")[1][1:])) for q in QUESTIONS]
    practicals = list(dict.fromkeys(p for p, _, _ in order))
    assert practicals == ["1-ab", "1-cd", "1-e"]
    for practical in practicals:  # Q before B in 1-ab; numbers rising within each letter
        mine = [(letter, n) for p, letter, n in order if p == practical]
        letters = list(dict.fromkeys(letter for letter, _ in mine))
        for letter in letters:
            numbers = [n for lt, n in mine if lt == letter]
            assert numbers == list(range(1, len(numbers) + 1)), (practical, letter)
    for q in QUESTIONS:
        assert q.kinds and set(q.kinds) <= set(KINDS), q.id
        assert q.title and q.asks.strip()
        assert q.part[:2] == "1-" and q.part[2] in q.practical[2:], (q.id, q.part)  # 1-c: 1-cd
        assert q.section == f"{q.id} — {q.title}"
        assert all(r.value.strip() and r.setup.strip() for r in q.references), q.id
    assert len(questions("1-e")) == 17 and find("1e.multihead").id == "1e.E3"
    assert find("1-CD.q16").id == "1cd.Q16"


def _command_exists(line: str) -> None:
    words = shlex.split(line.replace("RUN_FOLDER", "some/run"))
    assert words[0] == "tinyvision", line
    args = parse(words[1:])  # a bad command or option is a UserError here
    assert args.command in build_parser()._subparsers._group_actions[0].choices


def test_each_question_names_something_that_exists():
    for q in QUESTIONS:
        for a in q.answers:
            if a.kind == "study":
                assert a.name in STUDIES, (q.id, a.name)
            elif a.kind == "preset":
                assert a.name in all_presets(), (q.id, a.name)
            elif a.kind == "sweep":  # the key is one the preset's config takes, values too
                key, values = a.key.split("=")
                for value in values.split(","):
                    build_config(a.name, [f"{key}={value}"])
                _command_exists(a.command)
            else:
                assert a.kind == "command", (q.id, a.kind)
                _command_exists(a.command)
        for r in q.references:
            if r.preset and "/" in r.preset:
                study, step = r.preset.split("/")
                assert step in [label for label, _, _ in STUDIES[study].steps], r.preset
            elif r.preset:
                assert r.preset in all_presets(), (q.id, r.preset)
        assert q.notebook in NOTEBOOKS.values()


def _notebook_headings() -> dict[str, str]:
    """Each notebook's Markdown, and the script that writes them (sections by id)."""
    texts = {}
    for name in NOTEBOOKS.values():
        path = ROOT / "notebooks" / f"{name}.ipynb"
        cells = json.loads(path.read_text())["cells"] if path.is_file() else []
        texts[name] = "\n".join(
            "".join(c["source"]) for c in cells if c.get("cell_type") == "markdown"
        )
    return texts


SCHEME = re.compile(r"1(?:ab|cd|e)\.[QBE]\d+ — ")


def missing_sections(texts: dict[str, str], script: str) -> list[str]:
    """The questions whose `<id> — ` heading is in neither their notebook nor the script."""
    return [
        q.section
        for q in QUESTIONS
        if not re.search(rf"^#+ {re.escape(q.id)} — ", texts[q.notebook], flags=re.M)
        and f"{q.id} — " not in script
    ]


def test_each_question_has_its_notebook_section():
    texts = _notebook_headings()
    script = (ROOT / "scripts" / "make-notebooks.py").read_text()
    if not any(SCHEME.search(t) for t in [*texts.values(), script]):
        pytest.skip("the notebooks have no `<id> — <title>` sections yet: nothing to check")
    missing = missing_sections(texts, script)
    assert not missing, f"questions without their notebook section: {missing}"


def test_the_section_check_sees_a_missing_section():
    texts = {name: "" for name in NOTEBOOKS.values()}
    for q in QUESTIONS:
        texts[q.notebook] += f"## {q.section}\n"
    assert missing_sections(texts, "") == []
    texts["1cd-cnn"] = texts["1cd-cnn"].replace("## 1cd.Q16 — ", "## 1cd.Q15b — ")
    texts["1e-vit"] = texts["1e-vit"].replace("## 1e.E3 — ", "")  # no longer a heading
    assert [s.split(" — ")[0] for s in missing_sections(texts, "")] == ["1cd.Q16", "1e.E3"]


def _fake_study(
    out: Path, study: str, rows: list[tuple[str, int, str, float]], tokens: dict | None = None
) -> Path:
    """A study folder as `tinyvision study` writes it: sweep.json, sweep.csv, one run."""
    from tinyvision.groups.sweep import RESULT_COLUMNS

    folder = out / f"study-{study}-abc123"
    run = folder / "step=lr=0.01_seed0"
    run.mkdir(parents=True)
    spec = {"kind": "study", "study": study, "overrides": [], "seeds": 2}
    (folder / "sweep.json").write_text(json.dumps(spec))
    lines = [",".join(["step", *RESULT_COLUMNS])]
    for step, seed, status, acc in rows:
        cells = {"seed": seed, "status": status, "epochs_done": 1, "final_test_acc": acc}
        cells["tokens"] = (tokens or {}).get(step, "")
        lines.append(",".join([step, *(str(cells.get(c, "")) for c in RESULT_COLUMNS)]))
    (folder / "sweep.csv").write_text("\n".join(lines) + "\n")
    config = {"preset": "1cd-standardize", "data": {"name": "digits"}, "model": {"name": "cnn"}}
    (run / "config.json").write_text(json.dumps(config))
    (run / "summary.json").write_text(json.dumps({"status": "completed", "final": {}}))
    return folder


def test_course_question_answers_from_the_records(tmp_path, capsys):
    folder = _fake_study(
        tmp_path,
        "1cd-lr",
        [
            ("lr=0.01", 0, "completed", 41.25),
            ("lr=0.01", 1, "completed", 43.75),
            ("lr=0.1", 0, "completed", 12.5),
            ("lr=0.5", 0, "diverged", 10.0),  # not a result: left out
        ],
    )
    assert main(["course", "1cd.Q16", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "tinyvision study 1cd-lr" in out and "tinyvision study 1cd-batch-size" in out
    assert "56% at lr 0.01" in out and "CIFAR-10, batch 128" in out  # with its setup
    assert f"study 1cd-lr ({folder}): digits, 1 epoch" in out
    assert "lr=0.01: 42.50% ± 1.77 (2 seeds)" in out  # the mean of the two records
    assert "lr=0.1: 12.50%" in out and "lr=0.5" not in out
    assert "data digits, not CIFAR-10" in out and "compare the trend" in out


def test_course_question_reads_a_real_run(tmp_path, capsys):
    from tinyvision.experiment.runner import run

    path, summary = run(
        build_config("1ab-circles-manual", ["train.epochs=2"]), tmp_path, "cpu", quiet=True
    )
    assert main(["course", "1ab.B1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    final = summary["final"]["test_acc"]
    assert f"preset 1ab-circles-manual ({path}): circles, 2 epochs" in out
    assert f"final test accuracy {final:.2f}%" in out
    assert "94% test, loss 0.18 — circles, lr 0.1" in out
    # nothing ran for the sweeps: each answer says how to run it
    assert main(["course", "1cd.Q21", "--out", str(tmp_path)]) == 0
    assert "nothing recorded yet; `tinyvision study 1cd-normalization" in capsys.readouterr().out


def test_summary_numbers_are_computed_not_typed(capsys):
    assert main(["course", "1cd.Q11"]) == 0
    out = capsys.readouterr().out
    live = out[out.index("computed now") :]
    assert "1,191,170 parameters (weights and biases)" in live
    assert "fc4 holds 1,025,000 of them (86.0%)" in live
    assert main(["course", "1cd.Q7"]) == 0
    live = capsys.readouterr().out.split("computed now")[1]
    assert "conv1 5, pool1 6, conv2 14" in live


@pytest.mark.parametrize("word", ["1cd.Q99", "1e.multihed", "2ab", "1cd.Q1\x1b[31m"])
def test_unknown_question_is_one_line_exit_2(word, capsys):
    assert main(["course", word]) == 2
    captured = capsys.readouterr()
    assert not captured.out and captured.err.count("\n") == 1
    assert "unknown question" in captured.err and "\x1b" not in captured.err
    if word == "1cd.Q99":
        assert "did you mean 1cd.Q9" in captured.err


def test_damaged_records_are_left_out(tmp_path, capsys):
    folder = _fake_study(tmp_path, "1cd-lr", [("lr=0.01", 0, "completed", 50.0)])
    (folder / "sweep.json").write_text("{not json")
    (tmp_path / "link").symlink_to(folder)
    assert main(["course", "1cd.Q16", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nothing recorded yet" in out and "left out as unreadable" in out


def test_the_python_api():
    import tinyvision as tv

    frame = tv.course()
    assert len(frame) == len(QUESTIONS) and list(frame.columns)[0] == "id"
    assert len(tv.course("1-ab")) == 23
    view = tv.course("1e.multihead", out="nowhere")
    assert view.question.id == "1e.E3" and view.found == []
    assert "<pre>" in view._repr_html_() and "1e.E3" in str(view)
    from tinyvision import api

    assert len(api.course("1cd")) == 34


def test_a_study_step_question_shows_its_steps(tmp_path, capsys):
    """1cd.Q34 (batch norm) reads the ablation's step and the one before it, not all six."""
    steps = ["baseline", "standardize", "augment", "schedule", "dropout", "batchnorm"]
    _fake_study(
        tmp_path, "1cd-ablation", [(s, 0, "completed", 50.0 + i) for i, s in enumerate(steps)]
    )
    assert main(["course", "1cd.Q34", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    shown = re.findall(r"^    (\w+): (\S+)$", out, flags=re.M)
    assert shown == [("dropout", "54.00%"), ("batchnorm", "55.00%")]
    assert "84.97% — everything stacked: CIFAR-10, 40 epochs, lr 0.1" in out


def test_a_vit_study_shows_its_tokens(tmp_path, capsys):
    """1e.patch-size: each patch size's accuracy with the tokens its runs recorded."""
    rows = [("patch_size=2", 0, "completed", 97.0), ("patch_size=14", 0, "completed", 98.5)]
    _fake_study(tmp_path, "1e-patch-size", rows, {"patch_size=2": 197, "patch_size=14": 5})
    assert main(["course", "1e.patch-size", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "patch_size=2: 97.00%, 197 tokens" in out and "patch_size=14: 98.50%, 5 tokens" in out
    assert "196, 4 and 1 patches — patch 2, 14 and 28 on 28 x 28 images" in out


def test_text_from_the_records_is_printed_literally(tmp_path, capsys):
    """A run folder or field holding terminal escapes is shown with them made visible."""
    run = tmp_path / "1cd-baseline-\x1b[2Jx"
    run.mkdir()
    config = {"preset": "1cd-baseline", "data": {"name": "cifar10"}, "model": {"name": "cnn"}}
    summary = {
        "status": "completed",
        "epochs_done": 30,
        "best_test_acc": 71.0,
        "best_epoch": "\x1b[31mred",
        "final": {"test_acc": 70.25},
    }
    (run / "config.json").write_text(json.dumps(config))
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["course", "1cd.Q15", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2Jx" in out and "\\x1b[31mred" in out
    assert "final test accuracy 70.25%" in out
    assert "compare the trend" not in out  # the course's data and budget: nothing differs


def test_a_command_question_names_the_runs_it_can_use(tmp_path, capsys):
    """1cd.Q5 (fc as convolution): the CNN runs `fcconv` takes, and what it drew there."""
    for name, picture in (("1cd-baseline-a", True), ("1cd-baseline-b", False)):
        run = tmp_path / name
        run.mkdir()
        config = {"preset": "1cd-baseline", "data": {"name": "cifar10"}, "model": {"name": "cnn"}}
        (run / "config.json").write_text(json.dumps(config))
        (run / "summary.json").write_text(json.dumps({"status": "completed", "final": {}}))
        if picture:
            (run / "fc_as_conv.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert main(["course", "1cd.Q5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("1cd-baseline-a", "1cd-baseline-b"):
        assert f"run tinyvision fcconv {tmp_path / name}" in out
    assert out.count("drawn ") == 1 and f"drawn {tmp_path / '1cd-baseline-a/fc_as_conv.png'}" in out


def test_the_svm_question_reads_the_svms(tmp_path, capsys):
    run = tmp_path / "1ab-svm-x"
    run.mkdir()
    config = {"preset": "1ab-svm", "data": {"name": "circles"}, "model": {"name": "mlp"}}
    svm = [
        {"kernel": "linear", "C": 1.0, "test_acc": 65.0},
        {"kernel": "rbf", "C": 1.0, "test_acc": 95.5},
        "not a fit",
    ]
    summary = {"status": "completed", "final": {"test_acc": 94.0}, "svm": svm}
    (run / "config.json").write_text(json.dumps(config))
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["course", "1ab.B6", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "SVM linear C=1.0: test 65.00%" in out and "SVM rbf C=1.0: test 95.50%" in out


def test_the_error_before_training_is_read_from_epoch_0(tmp_path, capsys):
    """1-cd Q17: the run's epoch-0 row (its untrained weights), ten classes near ln 10."""
    import math

    from tinyvision.experiment.runner import run
    from tinyvision.io import read_csv

    path, _ = run(
        build_config("1cd-baseline", ["data.name=digits", "train.epochs=1"]),
        tmp_path,
        "cpu",
        quiet=True,
    )
    first = read_csv(path / "metrics.csv")[0]
    assert first["epoch"] == "0" and abs(float(first["test_loss"]) - math.log(10)) < 0.2
    assert main(["course", "1cd.Q17", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    loss, acc = float(first["test_loss"]), float(first["test_acc"])
    assert (
        f"before training (epoch 0) test loss {loss:.4f} (ln 10 = 2.3026), accuracy {acc:.2f}%"
        in out
    ), out


def test_the_error_before_training_is_set_beside_ln_k_for_k_classes(tmp_path, capsys):
    """Two classes (circles): the untrained loss is set beside ln 2, not ln 10."""
    from tinyvision.experiment.runner import run

    run(build_config("1ab-circles-manual", ["train.epochs=1"]), tmp_path, "cpu", quiet=True)
    assert main(["course", "1ab.B1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(ln 2 = 0.6931)" in out and "ln 10" not in out
