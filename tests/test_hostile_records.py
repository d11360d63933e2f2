"""Records as untrusted input: a shared or hand-edited `runs/` folder.

One real run is recorded once, copied per test, then damaged: links to files and folders
elsewhere, special files, fake pictures, markup in names, cut and garbage files, a
garbage index, a folder we must not write to. Every case ends in a report that leaks
nothing and says what it left out, or in one line and exit 2, never a traceback.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from tinyvision.cli import main
from tinyvision.experiment import index

from conftest import copy_records, one_line_error, run_cli

SECRET = "SECRET-TOKEN-d41d8cd98f00"
HOSTILE = "<img src=x onerror=alert(1)>"
SCRIPT = "model.name=<script>alert(1)</script>`|*[x](javascript:alert(1))"


@pytest.fixture
def records(recorded, tmp_path) -> tuple[Path, Path]:
    """A fresh copy of the records root, and its run folder."""
    return copy_records(recorded, tmp_path)


def _pictures(run_dir: Path) -> list[str]:
    """The pictures the run left (how many depends on the run hooks installed)."""
    return sorted(p.name for p in run_dir.iterdir() if p.suffix in (".png", ".gif"))


def _report(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# --- 1. pictures and folders: only plain, real pictures inside the run folder ----------


def test_report_embeds_only_real_pictures_inside_the_run(records, tmp_path, capsys):
    root, run_dir = records
    real = _pictures(run_dir)
    assert {"curves.png", "decision_boundary.png", "decision_boundary.gif"} <= set(real)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET * 10)
    outside_png = tmp_path / "outside.png"
    Image.new("RGB", (3, 3), "red").save(outside_png)
    (run_dir / "zz.png").symlink_to(secret)
    (run_dir / "zz-picture.png").symlink_to(outside_png)
    (run_dir / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(run_dir / "fifo.png")
    (run_dir / "fake.png").write_text(SECRET)
    (run_dir / "cut.png").write_bytes((run_dir / "curves.png").read_bytes()[:200])
    with (run_dir / "huge.png").open("wb") as f:  # sparse: 21 MB that take no disk
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(21 * 1024 * 1024)

    code, out, err = _report(capsys, str(root), "--out", str(tmp_path / "rep"))

    assert code == 0, err
    html = (tmp_path / "rep" / "report.html").read_text()
    assets = tmp_path / "rep" / "report_assets"
    assert html.count("<img ") == len(real) == len(list(assets.iterdir()))
    assert SECRET not in html and base64.b64encode(SECRET.encode()[:9]).decode() not in html
    assert outside_png.read_bytes() not in [p.read_bytes() for p in assets.iterdir()]
    assert base64.b64encode(outside_png.read_bytes()).decode() not in html
    for name, why in [
        ("zz.png", "symbolic link"),
        ("zz-picture.png", "symbolic link"),
        ("zero.png", "symbolic link"),
        ("fifo.png", "not a plain file"),
        ("fake.png", "not a PNG or GIF"),
        ("cut.png", "damaged picture"),
        ("huge.png", "more than the"),
    ]:
        (line,) = [x for x in err.splitlines() if f"/{name}:" in x]
        assert why in line and "left out" in line
        assert name in html.split("<h2 id='skipped'>Skipped</h2>")[1]


def test_a_picture_must_lie_inside_its_folder(records, tmp_path):
    from tinyvision.records_read import RecordError, read_picture

    _, run_dir = records
    data, mime = read_picture(run_dir / "curves.png", run_dir)
    assert mime == "image/png" and data == (run_dir / "curves.png").read_bytes()
    (tmp_path / "other").mkdir()
    with pytest.raises(RecordError, match="outside its folder"):
        read_picture(run_dir / "curves.png", tmp_path / "other")


def test_report_does_not_follow_linked_folders_and_stops_deep_down(records, tmp_path, capsys):
    root, run_dir = records
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(run_dir, elsewhere / "other-run")
    (elsewhere / "sweep").mkdir()
    (elsewhere / "sweep" / "sweep.json").write_text('{"preset": "1ab-circles-optim"}')
    (root / "linked-run").symlink_to(elsewhere / "other-run")
    (root / "linked-sweep").symlink_to(elsewhere / "sweep")
    (root / "loop").symlink_to(root)
    deep = root / "/".join(f"d{i}" for i in range(12))
    shutil.copytree(run_dir, deep / "deep-run")

    code, out, err = _report(capsys, str(root), "--out", str(tmp_path / "rep"))

    assert code == 0, err
    html = (tmp_path / "rep" / "report.html").read_text()
    assert run_dir.name in html
    assert (
        "other-run" not in html.split("<h2 id='skipped'>Skipped</h2>")[0] and "sweep of" not in html
    )
    assert "deep-run" not in html
    for name in ("linked-run", "linked-sweep", "loop"):
        (line,) = [x for x in err.splitlines() if f"/{name}:" in x]
        assert "symbolic link to a folder; not followed" in line
    assert any("not searched" in x for x in err.splitlines())


# --- 2. report.md and report.html escape every text from the records ------------------


def test_report_escapes_hostile_overrides_and_folder_names(records, tmp_path, capsys):
    root, run_dir = records
    _edit_json(run_dir / "config.json", overrides=[SCRIPT], preset=HOSTILE)
    _edit_json(run_dir / "summary.json", best_epoch="1|<b>x</b>")
    hostile_dir = run_dir.rename(root / HOSTILE)

    code, out, err = _report(capsys, str(root), "--out", str(tmp_path / "rep"))

    assert code == 0 and not err, err
    md = (tmp_path / "rep" / "report.md").read_text()
    html = (tmp_path / "rep" / "report.html").read_text()
    for text in (md, html):
        assert "<script" not in text.lower() and "<img src=x" not in text
        assert "<b>" not in text
        # the only links are the contents' own, to slugged anchors: none comes from a record
        links = re.findall(r"href\s*=\s*['\"]?([^'\" >]*)", text, flags=re.IGNORECASE)
        assert all(re.fullmatch(r"#[a-z0-9-]+", link) for link in links), links
    assert not re.search(r"(?<!\\)\]\(javascript:", md), "an escaped bracket is no link"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;img src=x" in md
    (row,) = [line for line in md.splitlines() if line.startswith("| circles | mlp |")]
    assert len(re.split(r"(?<!\\)\|", row)) == 9 + 2, "a | in a value must not add a cell"
    assets = [p.name for p in (tmp_path / "rep" / "report_assets").iterdir()]
    assert len(assets) == len(_pictures(hostile_dir)) and all(
        re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in assets
    )
    assert hostile_dir.is_dir()


# --- 3. rich: what the records hold is printed literally ------------------------------


def test_runs_ls_and_show_print_markup_literally(records):
    root, run_dir = records
    row = {
        "run_id": "[/]-20240101-000000-abcd",
        "preset": "[/]",
        "epochs": 1,
        "status": "[bold red]completed",
        "model": "[/red]",
    }
    index.upsert(root, row)
    _edit_json(run_dir / "config.json", preset="[/]", overrides=["x=[/red]", ":smile:"])
    (root / "run[").mkdir()
    shown_dir = run_dir.rename(root / "run[/red]x")  # the folder red]x in the folder run[

    listing = run_cli("runs", "ls", "--out", str(root))
    shown = run_cli("runs", "show", str(shown_dir))

    assert listing.returncode == 0 and not listing.stderr, listing.stderr
    for text in ("[/]-20240101-000000-abcd", "[bold red]completed", "[/red]"):
        assert text in listing.stdout
    assert shown.returncode == 0 and not shown.stderr, shown.stderr
    assert f"{shown_dir}  preset [/]" in shown.stdout
    assert "overrides: x=[/red] :smile:" in shown.stdout


# --- 4. runs show and runs ls on damaged records ---------------------------------------


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


METRICS_HEADER = "epoch,train_loss,train_acc,test_loss,test_acc,lr,epoch_seconds\n"
DAMAGES = {  # file, what it becomes, what the one line says
    # the last line is cut: line 3, after the header and epoch 0 (before training)
    "metrics-cut": ("metrics.csv", None, "metrics.csv: line 3 has fewer fields"),
    "metrics-binary": ("metrics.csv", bytes(range(256)) * 4, "metrics.csv: not UTF-8"),
    "metrics-nul": ("metrics.csv", b"\x00" * 50, "metrics.csv: the header lacks the columns"),
    "metrics-not-numbers": (
        "metrics.csv",
        (METRICS_HEADER + "1,x,1,1,1,1,1\n").encode(),
        "metrics.csv: line 2: train_loss 'x' is not a number",
    ),
    "summary-list": ("summary.json", b"[]", "summary.json: expected a JSON object"),
    "summary-cut": ("summary.json", b'{"status": "compl', "summary.json: not valid JSON"),
    "summary-link": ("summary.json", "link", "summary.json: a symbolic link"),
    "summary-fifo": ("summary.json", "fifo", "summary.json: not a plain file"),
    "config-not-object": ("config.json", b'"text"', "config.json: expected a JSON object"),
}


def _damage(run_dir: Path, name: str, content: bytes | str | None) -> None:
    path = run_dir / name
    if content is None:  # cut in the middle of the last line
        path.write_text(path.read_text()[:-80])
    elif content == "fifo":
        _fifo(path)
    elif content == "link":
        path.rename(run_dir.parent / "elsewhere.json")
        path.symlink_to(run_dir.parent / "elsewhere.json")
    else:
        path.write_bytes(content)


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_runs_show_on_a_damaged_run_is_one_line(records, damage, capsys):
    _, run_dir = records
    name, content, fragment = DAMAGES[damage]
    _damage(run_dir, name, content)
    code = main(["runs", "show", str(run_dir)])
    captured = capsys.readouterr()
    one_line_error(code, captured.err, fragment)
    assert captured.out == "", "nothing half-printed before the error"


def test_runs_show_with_missing_fields_shows_what_is_there(records, capsys):
    _, run_dir = records
    (run_dir / "summary.json").write_text('{"status": "completed", "params": "many"}')
    assert main(["runs", "show", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "status completed" in out and "params many" in out and "?s" in out


@pytest.mark.parametrize("garbage", [os.urandom(3000), b"just some text\n" * 50])
def test_runs_ls_on_a_garbage_index_is_one_line(records, garbage):
    root, _ = records
    (root / "index.sqlite").write_bytes(garbage)
    result = run_cli("runs", "ls", "--out", str(root))
    one_line_error(
        result.returncode,
        result.stderr,
        "index.sqlite",
        "not a readable run index",
        "delete it",
        "run folders",
    )


# --- 5. read-only commands write nothing ------------------------------------------------


def _state(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under root: its size, modification time and bytes."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_runs_ls_and_report_write_nothing_into_the_records(records, tmp_path, capsys, journal):
    root, run_dir = records
    if journal == "delete":  # an index in SQLite's other journal mode stays in it
        with sqlite3.connect(root / "index.sqlite") as conn:
            conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
    before = _state(root)
    assert not list(root.glob("index.sqlite-*"))

    assert main(["runs", "ls", "--out", str(root)]) == 0
    assert run_dir.name in capsys.readouterr().out
    code, _, err = _report(capsys, str(root), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert main(["runs", "show", str(run_dir)]) == 0

    assert _state(root) == before, "a read-only command changed or added a file"
    assert not list(root.glob("index.sqlite-*"))


def test_runs_ls_sees_rows_a_writer_has_not_checkpointed(records):
    root, _ = records
    writer = sqlite3.connect(root / "index.sqlite")  # stays open: its rows are in the -wal
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("INSERT INTO runs (run_id, status, created) VALUES ('new', 'running', 'z')")
        writer.commit()
        assert (root / "index.sqlite-wal").is_file()
        assert [r["run_id"] for r in index.rows(root)][-1] == "new"
    finally:
        writer.close()


@pytest.fixture
def shared_place(recorded):
    """A copy of the records in a folder every user can enter, and a home for the commands.

    Root ignores file modes, so as root the commands run as `nobody` (through setpriv,
    which works here where subprocess's own `user=` cannot exec the venv): the read-only
    folder is then read-only for them. pytest's own temporary folders are closed to
    other users, hence a folder of our own, removed afterwards.
    """
    place = Path(tempfile.mkdtemp(prefix="tinyvision-ro-"))
    place.chmod(0o755)
    shutil.copytree(recorded, place / "runs")
    for sub in ("home", "rep"):
        (place / sub).mkdir(mode=0o777)
        (place / sub).chmod(0o777)
    yield place
    for p in [place, *place.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(place)


def _cli_as_user(place: Path, *args: str) -> subprocess.CompletedProcess:
    home = place / "home"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "MPLCONFIGDIR": str(home / "mpl"),
        "TORCH_HOME": str(home / "torch"),
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
    }
    command = [sys.executable, "-m", "tinyvision", *args]
    if os.geteuid() == 0:
        command = [*AS_NOBODY, *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=home)


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.skipif(
    os.geteuid() == 0 and not shutil.which("setpriv"),
    reason="as root, a read-only folder needs another user (setpriv)",
)
def test_read_only_records_folder(shared_place):
    root = shared_place / "runs"
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    before = _state(root)
    for p in [root, *root.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)

    listing = _cli_as_user(shared_place, "runs", "ls", "--out", str(root))
    shown = _cli_as_user(shared_place, "runs", "show", str(run_dir))
    report = _cli_as_user(shared_place, "report", str(root), "--out", str(shared_place / "rep"))
    refused = _cli_as_user(shared_place, "report", "--out", str(root))

    assert listing.returncode == 0 and run_dir.name in listing.stdout, listing.stderr
    assert shown.returncode == 0 and "test acc" in shown.stdout, shown.stderr
    assert report.returncode == 0, report.stderr
    assert (shared_place / "rep" / "report.html").is_file()
    one_line_error(refused.returncode, refused.stderr, "cannot write the report there")
    assert _state(root) == before


def test_report_into_an_unwritable_place_is_one_line(records, tmp_path, capsys):
    root, _ = records
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = _report(capsys, str(root), "--out", str(blocker / "rep"))
    one_line_error(code, err, "cannot write the report there", "writable folder")


# --- 6. the report says what it left out, and why ---------------------------------------


SWEEP_CSV = (
    "lr_axis,seed,status,epochs_done,final_test_acc,best_test_acc,gap,params,seconds\n"
    "0.1,0,completed,1,65.0,65.0,1.5,52,0.6"
)


def _sweep(root: Path, run_dir: Path) -> Path:
    """A hand-made sweep folder holding a copy of the run."""
    sweep = root / "sweep-1ab-circles-optim-lr"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"preset": "1ab-circles-optim", "seeds": 1}))
    (sweep / "sweep.csv").write_text(SWEEP_CSV + "\n")
    shutil.copytree(run_dir, sweep / "lr=0.1")
    return sweep


REPORT_DAMAGES = {
    "sweep-json-cut": (
        lambda s, r: (s / "sweep.json").write_text('{"preset": "1a'),
        "sweep.json: not valid JSON",
        "the sweep is left out",
    ),
    "sweep-csv-columns": (
        lambda s, r: (s / "sweep.csv").write_text("a,b\n1,2\n"),
        "sweep.csv: the header lacks the columns seed, status",
        "the sweep's table is left out",
    ),
    "sweep-csv-ragged": (
        lambda s, r: (s / "sweep.csv").write_text(SWEEP_CSV + ",9\n"),
        "sweep.csv: line 2 has more fields",
        "table is left out",
    ),
    "summary-garbage": (
        lambda s, r: (r / "summary.json").write_bytes(b"\xff\xfe\x00garbage"),
        "summary.json: not UTF-8",
        "the run is left out",
    ),
    "config-garbage": (
        lambda s, r: (r / "config.json").write_text("{{{"),
        "config.json: not valid JSON",
        "the run is left out",
    ),
    "config-no-model-name": (
        lambda s, r: _edit_json(r / "config.json", model={"hidden": 4}),
        "config.json: model.name is missing",
        "the run is left out",
    ),
    "summary-final-list": (
        lambda s, r: _edit_json(r / "summary.json", final=[1, 2]),
        "summary.json: final is not an object",
        "the run is left out",
    ),
    "no-summary": (
        lambda s, r: (r / "summary.json").unlink(),
        "no summary.json",
        "a run still going",
    ),
}


@pytest.mark.parametrize("damage", list(REPORT_DAMAGES))
def test_report_names_each_folder_it_leaves_out(records, tmp_path, capsys, damage):
    root, run_dir = records
    sweep = _sweep(root, run_dir)
    hurt, fragment, consequence = REPORT_DAMAGES[damage]
    hurt(sweep, run_dir)

    code, out, err = _report(capsys, str(root), "--out", str(tmp_path / "rep"))

    assert code == 0, err
    assert out.strip().splitlines()[-1] == f"report: {tmp_path / 'rep' / 'report.html'}"
    (line,) = err.strip().splitlines()
    assert line.startswith(f"tinyvision: {root}/") and fragment in line and consequence in line
    html = (tmp_path / "rep" / "report.html").read_text()
    skipped = html.split("<h2 id='skipped'>Skipped</h2>")[1]
    assert fragment.split(":")[0] in skipped and "1 folder or file was left out" in html
    assert "Traceback" not in err


def test_report_of_only_bad_runs_still_writes_and_says_so(records, tmp_path, capsys):
    root, run_dir = records
    second = root / "second-run"
    shutil.copytree(run_dir, second)
    (run_dir / "summary.json").write_text("[]")
    (second / "config.json").write_bytes(os.urandom(100))

    code, out, err = _report(capsys, str(root), "--out", str(tmp_path / "rep"))

    assert code == 0, err
    assert len(err.strip().splitlines()) == 2
    html = (tmp_path / "rep" / "report.html").read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    for text in (html, md):
        assert "from 0 runs and 0 sweeps" in text and "No usable run was found" in text
        assert "Skipped" in text and "second-run" in text
    assert "Practical 1-ab" not in html


def test_report_with_a_garbage_tour_record(records, tmp_path, capsys):
    root, _ = records
    (root / "tour.json").write_text('{"summary": 3, "parts": []}')
    code, _, err = _report(capsys, str(root), "--out", str(tmp_path / "rep"))
    assert code == 0
    assert "tour.json: not a tour record" in err
    assert "Practical 1-ab" in (tmp_path / "rep" / "report.html").read_text()


def test_report_shows_a_run_whose_fields_have_the_wrong_types(records, tmp_path, capsys):
    root, run_dir = records
    _edit_json(
        run_dir / "summary.json",
        svm=5,
        versions=[1],
        data="x",
        params="many",
        final={"test_acc": "high"},
        seconds=float("inf"),
        input_shape=[2, 10**9],
        classes="two",
        best_epoch={"a": 1},
    )

    code, _, err = _report(capsys, str(root), "--out", str(tmp_path / "rep"))

    assert code == 0, err
    assert err == "", "a run with odd fields is shown, not left out"
    html = (tmp_path / "rep" / "report.html").read_text()
    # headed by its preset, the folder named beside it
    preset = json.loads((run_dir / "config.json").read_text())["preset"]
    assert f">{preset}</h3>" in html and run_dir.name in html and "Skipped" not in html


def test_report_shows_the_recorded_layer_table_literally(records, tmp_path, capsys):
    """The table is the run's layers.txt (not rebuilt from a config that may be anything),
    printed as text; a layers.txt that is a link is not followed."""
    root, run_dir = records
    _edit_json(run_dir / "config.json", model={"name": "mlp", "hidden": "many"})
    table = (run_dir / "layers.txt").read_text()
    (run_dir / "layers.txt").write_text(table + "<script>alert(1)</script>\n")

    code, _, err = _report(capsys, str(root), "--out", str(tmp_path / "rep"))

    assert code == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Models: layer tables" in html and table.splitlines()[1] in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html

    (run_dir / "layers.txt").unlink()
    (run_dir / "layers.txt").symlink_to("/etc/passwd")
    code, _, err = _report(capsys, str(root), "--out", str(tmp_path / "rep2"))
    assert code == 0 and "root:" not in (tmp_path / "rep2" / "report.html").read_text()


def test_report_replaces_a_linked_report_assets_folder_without_touching_its_target(
    records, tmp_path, capsys
):
    root, run_dir = records
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    (root / "report_assets").symlink_to(precious)

    code, _, err = _report(capsys, "--out", str(root))

    assert code == 0, err
    assert (precious / "keep.txt").read_text() == "mine" and len(list(precious.iterdir())) == 1
    assets = root / "report_assets"
    assert not assets.is_symlink() and len(list(assets.iterdir())) == len(_pictures(run_dir))
