"""`tinyvision grade`: each completed exercise notebook run in a fresh kernel, every check
run on the pieces it defines, one row of grades per notebook.

This runs the students' code, as any autograder does (nbgrader, otter-grader): run it
where that is safe (a container or a throwaway account). A notebook that cannot be read,
a cell that runs past the time limit, a kernel that dies: each is one row with the
reason, never a crash of the whole class's grading.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tinyvision.check.pieces import PIECES
from tinyvision.errors import UserError

MARK = "TINYVISION-GRADE:"  # the grading cell's answer, one JSON line
MAX_BYTES = 50 * 1024 * 1024  # a notebook larger than this is refused, not read
INSTALL = "pip install 'tinyvision[grade]'"
KERNEL = "tinyvision-grade"  # a kernel spec of this interpreter, written for the grading


@dataclass
class Row:
    """One notebook's grades: {check: (status, reason)}, and what went wrong, if anything."""

    notebook: str
    verdicts: dict[str, tuple[str, str]] = field(default_factory=dict)
    note: str = ""

    @property
    def passed(self) -> int:
        return sum(status == "passed" for status, _ in self.verdicts.values())


def require_runner() -> None:
    """nbclient, nbformat and ipykernel run the notebooks: a clear line when one is missing."""
    import importlib.util

    missing = [m for m in ("nbclient", "nbformat", "ipykernel") if not importlib.util.find_spec(m)]
    if missing:
        raise UserError(
            f"tinyvision grade runs notebooks with nbclient, nbformat and ipykernel "
            f"({', '.join(missing)} missing): {INSTALL}"
        )


def read_notebook(path: Path):
    """(the notebook, "") or (None, why it cannot be graded)."""
    import nbformat

    if path.is_symlink():
        return None, "a symbolic link: not followed (grade the file itself)"
    if not path.exists():
        return None, "no such file"
    if not path.is_file():
        return None, "not a file"
    if path.stat().st_size > MAX_BYTES:
        return None, f"larger than {MAX_BYTES // 2**20} MB: not read"
    try:
        with path.open(encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # any damage: a row with the reason, the class goes on
        return None, f"not a readable notebook ({type(e).__name__}: {_one_line(str(e), 120)})"
    return nb, ""


def _one_line(text: str, width: int = 300) -> str:
    return " ".join(text.split())[:width]


def marked_checks(nb) -> list[str]:
    """The checks of the pieces the notebook's cells are marked with, in the table's order."""
    marked = set()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("tinyvision", {})
        if isinstance(meta, dict):
            for key in ("piece", "check"):
                if isinstance(meta.get(key), str):
                    marked.add(meta[key])
    return [c for c in PIECES if c in marked]


def grading_cell(checks: list[str]) -> str:
    return (
        "import json as _tv_json\n"
        "import tinyvision.check as _tv_check\n"
        f"print({MARK!r} + _tv_json.dumps(_tv_check.grade_namespace(globals(), {checks!r})))"
    )


def grade_notebook(path: Path, timeout: float) -> Row:
    """Run one notebook in a fresh kernel, in a temporary folder of its own; grade it."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat.v4 import new_code_cell

    row = Row(str(path))
    nb, why = read_notebook(path)
    if nb is None:
        row.note = why
        return row
    checks = marked_checks(nb) or list(PIECES)  # unmarked: look for every piece by name
    cells = list(nb.cells)  # numbered as the student sees them, markdown included
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs = []
    grader = new_code_cell(grading_cell(checks))
    nb.cells = [*cells, grader]
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tinyvision-grade-") as work:
        env = {
            **os.environ,
            "TINYVISION_NOTEBOOK_QUICK": "1",  # grading checks the pieces, not long trainings
            "TINYVISION_NOTEBOOK_OUT": work,
            "TINYVISION_CHECK_TIME_LIMIT": str(max(timeout / 2, 0.5)),
        }
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=KERNEL,
            allow_errors=True,
            resources={"metadata": {"path": work}},
            shutdown_kernel="immediate",  # graded: nothing in it is worth a graceful exit
        )
        try:
            # the kernel's own log (stderr) is not the student's output: kept off the console
            with client.setup_kernel(env=env, cwd=work, stderr=subprocess.DEVNULL):
                stuck = False
                for index, cell in enumerate(cells):
                    if cell.cell_type != "code":
                        continue
                    try:
                        client.execute_cell(cell, index)
                        stuck = False
                        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
                        if errors:
                            name = _one_line(str(errors[0].get("ename", "an error")), 60)
                            notes.append(f"cell {index + 1} raised {name}")
                    except CellTimeoutError:
                        notes.append(f"cell {index + 1} ran past {timeout:g} s and was stopped")
                        if stuck:  # the interrupt did not stop it: the kernel is lost
                            raise
                        stuck = True
                        _interrupt(client)
                client.timeout = int(timeout * (len(checks) + 1)) + 30
                client.execute_cell(grader, len(cells))
        except DeadKernelError:
            notes.append("the kernel died (a crash, or out of memory)")
        except CellTimeoutError:
            notes.append("the kernel did not stop after an interrupt")
        except Exception as e:  # the kernel could not start, or the protocol broke
            notes.append(f"could not run it ({type(e).__name__}: {_one_line(str(e), 120)})")
    answer = _answer(grader)
    row.note = "; ".join(notes)
    for check in checks:
        if check in answer:
            status, reason = answer[check]
            row.verdicts[check] = (status, reason)
        else:
            row.verdicts[check] = ("missing", f"not graded: {row.note or 'no answer'}")
    return row


def _interrupt(client) -> None:
    """Ctrl-C in the kernel: a loop stops, what it defined stays.

    nbclient leaves the stopped cell's output listener waiting: it would take the next
    cells' outputs (the grades among them) from the shared channel, so it is cancelled.
    """
    import asyncio

    from jupyter_core.utils import ensure_event_loop
    from nbclient.util import ensure_async, run_sync

    loop = ensure_event_loop()
    for task in asyncio.all_tasks(loop):
        if not task.done() and task.get_coro().__name__ == "_async_poll_output_msg":
            task.cancel()

    async def interrupt() -> None:
        await asyncio.sleep(0)  # the cancellations land
        await ensure_async(client.km.interrupt_kernel())

    run_sync(interrupt)()


def _answer(cell) -> dict[str, tuple[str, str]]:
    """The grading cell's verdicts, read from its own output (only well-formed ones)."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")
    for line in reversed(text.splitlines()):
        if line.startswith(MARK):
            try:
                data = json.loads(line[len(MARK) :])
            except ValueError:
                return {}
            if not isinstance(data, dict):
                return {}
            return {
                k: (v[0], _one_line(v[1]))
                for k, v in data.items()
                if k in PIECES
                and isinstance(v, list)
                and len(v) == 2
                and v[0] in ("passed", "failed", "missing")
                and isinstance(v[1], str)
            }
    return {}


def grade(notebooks: list[Path], timeout: float, jobs: int = 0) -> list[Row]:
    """Grade the notebooks, `jobs` kernels at a time (0: one per core, at most 4)."""
    from concurrent.futures import ThreadPoolExecutor

    require_runner()
    if timeout <= 0:
        raise UserError(f"--timeout {timeout:g}: give a positive number of seconds per cell")
    if not notebooks:
        raise UserError("no notebook given: name the completed exercise notebooks to grade")
    if jobs < 0:
        raise UserError(f"--jobs {jobs}: give a number of notebooks at a time, 1 or more")
    jobs = jobs or min(4, os.cpu_count() or 1)
    previous = os.environ.get("JUPYTER_PATH")
    # a cell stopped at its time limit leaves nbclient's output listener pending: asyncio
    # reports it when the loop closes, which says nothing about the grades
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="tinyvision-kernel-") as kernels:
        # the kernel runs this interpreter (where tinyvision is), whatever "python3" means
        # in the Jupyter set-up around it
        spec = Path(kernels) / "kernels" / KERNEL
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": "tinyvision grade", "language": "python"}
        (spec / "kernel.json").write_text(json.dumps(kernel))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [kernels, previous]))
        try:
            # each notebook runs in its own kernel process: threads here only wait on them
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                rows = list(pool.map(lambda p: grade_notebook(Path(p), timeout), notebooks))
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous
    for row in rows:  # one that could not be run: every check of the class, not graded
        if not row.verdicts:
            row.verdicts = {c: ("missing", f"not graded: {row.note}") for c in columns(rows)}
    return rows


def columns(rows: list[Row]) -> list[str]:
    """The checks any notebook defines, in the table's order."""
    seen = {c for r in rows for c in r.verdicts}
    return [c for c in PIECES if c in seen]


def _cell_text(text: str) -> str:
    """A spreadsheet reads a leading = + - @ as a formula: a student's text never is one."""
    text = _one_line(text, 500)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def csv_rows(rows: list[Row]) -> tuple[list[str], list[dict[str, str]]]:
    checks = columns(rows)
    header = ["notebook"]
    for check in checks:
        header += [check, f"{check} reason"]
    header += ["total", "note"]
    table = []
    for row in rows:
        line = {"notebook": _cell_text(row.notebook), "note": _cell_text(row.note)}
        for check in checks:
            status, reason = row.verdicts.get(
                check, ("missing", f"not graded: {row.note}" if row.note else "not in it")
            )
            line[check], line[f"{check} reason"] = status, _cell_text(reason)
        graded = len(row.verdicts) or len(checks)
        line["total"] = f"{row.passed}/{graded}"
        table.append(line)
    return header, table


def check_out(out: Path) -> None:
    """Refused before any notebook runs: a link or a folder where the grades go."""
    if out.is_symlink():
        raise UserError(f"{out} is a symbolic link: give --out a plain file path")
    if out.exists() and not out.is_file():
        raise UserError(f"{out} is not a file: give --out a file path such as grades.csv")


def write_grades(rows: list[Row], out: Path) -> None:
    from tinyvision.io import write_csv

    check_out(out)
    header, table = csv_rows(rows)
    write_csv(out, header, table)


def pass_rates(rows: list[Row]) -> dict[str, float]:
    """Per check, the share of the notebooks graded on it that passed it."""
    rates = {}
    for check in columns(rows):
        graded = [r.verdicts[check][0] for r in rows if check in r.verdicts]
        rates[check] = sum(s == "passed" for s in graded) / len(graded)
    return rates
