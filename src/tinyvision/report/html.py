"""`tinyvision report`: one self-contained HTML file and its Markdown twin.

The content is built once as a list of blocks (headings, paragraphs, tables, figures,
preformatted text) and rendered twice: HTML with every figure embedded (base64, no
network needed to view it) and Markdown with the figures copied beside it. Every
number comes from the records (summary.json, sweep.csv), never typed in.

Everything taken from the records (folder names, presets, overrides, any field) is
untrusted text: both renderings escape it, so a folder named `<script>...` shows as
that name and never runs. User text in a paragraph is a `Code` part or plain text, never
markup; the report's own formatting lives in the block kinds.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tinyvision import __version__, io
from tinyvision.errors import UserError
from tinyvision.experiment.folder import library_versions
from tinyvision.records_read import printable
from tinyvision.report.blocks import Block, Code, Link, Part, num, para, pct, setting, text_of
from tinyvision.report.collect import (
    PRACTICALS,
    Figure,
    Group,
    Records,
    Run,
    collect,
    group_practical,
    practical_of,
)
from tinyvision.report.overview import overview_blocks, variant_runs, variants_blocks
from tinyvision.report.questions import questions_blocks

# Each practical's key pictures, most telling first: a run or group shows the first it has
# open, the rest folded. A picture a group's runs all have comes from its last run in the
# course's order (the ablation's full stack).
KEY_FIGURES = (
    "attention_maps.png",
    "svm_boundaries.png",
    "confusion.png",
    "fc_as_conv.png",
    "decision_boundary.gif",
)


def course_order(runs: list[Run]) -> list[Run]:
    """Runs in the order of the course's presets (1-ab's circles first, ...), then by folder."""
    from tinyvision.presets import PRESETS

    place = {p.name: i for i, p in enumerate(PRESETS)}
    return sorted(runs, key=lambda r: (place.get(r.preset, len(place)), r.path.name))


def key_figure(named: list[tuple[str, Run]]) -> tuple[str, Run, Figure] | None:
    """The most telling picture among (name, run) pairs in the course's order, or None."""
    for wanted in KEY_FIGURES:
        found = [(n, r, f) for n, r in named for f in r.figures if f.name == wanted]
        if found:
            return found[-1]
    return None


def run_blocks(run: Run, show_curves: bool = True) -> list[Block]:
    """A run: its heading (its preset; the folder as a detail), its result in a line, its
    curves and key picture; the rest folded."""
    s, c = run.summary, run.config
    final = s.get("final") or {}
    blocks = [Block("h3", run.preset or run.path.name, key=f"run:{run.path}")]
    blocks.append(
        para(
            Code(run.preset),
            f" on {text_of(c['data']['name'])}: {text_of(s.get('status'))}, final test accuracy "
            f"{pct(final.get('test_acc')) or 'n/a'} after {text_of(s.get('epochs_done'))} "
            "epochs. Folder ",
            Code(run.path.name),
            ".",
        )
    )
    curves = [f for f in run.figures if f.name == "curves.png" and show_curves]
    key = key_figure([(run.preset, run)]) if show_curves else None
    curves += [key[2]] if key else []
    blocks += [Block("figure", figure=f, text=f.name) for f in curves]
    blocks.append(Block("details", "settings, numbers and every picture of this run"))
    changed = " ".join(c.get("overrides") or [])
    blocks.append(
        para(
            "Preset ",
            Code(run.preset),
            "; settings changed from it: ",
            Code(changed) if changed else "none (the preset as it is)",
            f". Status {text_of(s.get('status'))}, {text_of(s.get('epochs_done'))} epochs, "
            f"{num(s.get('seconds'))} s on {text_of(s.get('device'))} "
            f"(autocast {text_of(s.get('amp', 'none'))}).",
        )
    )
    blocks.append(
        Block(
            "table",
            header=(
                "dataset",
                "model",
                "params",
                "final train acc",
                "final test acc",
                "final test top-5",
                "best test acc",
                "best epoch",
                "final test loss",
            ),
            rows=(
                (
                    c["data"]["name"],
                    run.model,
                    num(s.get("params", 0), 0),
                    pct(final.get("train_acc")),
                    pct(final.get("test_acc")),
                    pct(final.get("test_acc5")),
                    pct(s.get("best_test_acc")),
                    text_of(s.get("best_epoch")),
                    num(final.get("test_loss"), 4),
                ),
            ),
        )
    )
    added = s.get("hooks") if isinstance(s.get("hooks"), dict) else {}
    comparison = (
        added.get("svm_comparison") if isinstance(added.get("svm_comparison"), dict) else {}
    )
    svm = comparison.get("svm", s.get("svm"))  # top level: records written before `hooks`
    svm = [r for r in svm if isinstance(r, dict)] if isinstance(svm, list) else []
    if svm:
        blocks.append(
            Block(
                "table",
                header=("kernel", "C", "train acc", "test acc", "support vectors"),
                rows=tuple(
                    (
                        text_of(r.get("kernel")),
                        text_of(r.get("C")),
                        pct(r.get("train_acc")),
                        pct(r.get("test_acc")),
                        text_of(r.get("n_support")),
                    )
                    for r in svm
                ),
            )
        )
    blocks += [Block("figure", figure=f, text=f.name) for f in run.figures if f not in curves]
    return [*blocks, Block("/details")]


def group_axes(group: Group) -> list[str]:
    """The columns that tell a group's runs apart, from its sweep.json (not the CSV layout)."""
    axes = group.spec.get("axes")
    space = group.spec.get("space")
    if group.is_search and isinstance(space, dict):
        return ["trial", *(str(k) for k in space)]  # the run's status follows, as for sweeps
    if isinstance(axes, dict):
        return [str(k) for k, v in axes.items() if isinstance(v, list) and len(v) > 1]
    return ["step"] if "study" in group.spec else []


def group_blocks(group: Group) -> list[Block]:
    blocks = [Block("h3", group.name, key=f"group:{group.path}")]
    spec = ", ".join(f"{text_of(k)}: {text_of(v)}" for k, v in group.spec.items())
    blocks.append(para("Folder ", Code(group.path.name), f" ({spec}); {len(group.runs)} runs."))
    if group.rows:
        axes = group_axes(group)
        header = (
            *axes,
            "seed",
            "status",
            "epochs",
            "final test acc",
            "best test acc",
            "train-test gap",
            "params",
            "tokens",
            "mult-adds/image",
            "seconds",
        )
        rows = []
        for r in group.rows:
            lead = tuple(setting(r.get(k, "")) for k in axes)
            rows.append(
                (
                    *lead,
                    r["seed"],
                    r["status"],
                    r["epochs_done"],
                    pct(r["final_test_acc"]),
                    pct(r["best_test_acc"]),
                    num(r["gap"], 2),
                    num(r["params"], 0),
                    r.get("tokens", ""),
                    num(r.get("macs"), 0),
                    num(r["seconds"]),
                )
            )
        blocks.append(Block("table", header=header, rows=tuple(rows)))
    blocks += [Block("figure", figure=f, text=f.name) for f in group.figures]
    named = named_runs(group)
    key = key_figure(named)
    if key:
        name, run, figure = key
        caption = f"{name}: {figure.name} (folder {run.path.name})"
        blocks.append(Block("figure", figure=figure, text=caption))
    pictures = [  # pictures a run got besides its curves (attention maps, ...)
        Block("figure", figure=figure, text=f"{name}: {figure.name} (folder {run.path.name})")
        for name, run in named
        for figure in run.figures
        if key is None or figure is not key[2]
    ]
    if pictures:
        blocks += [Block("details", "the runs' own pictures"), *pictures, Block("/details")]
    return blocks


def named_runs(group: Group) -> list[tuple[str, Run]]:
    """A group's runs in its own order (a study's steps as the course takes them, a sweep's
    grid), each named by its step or setting, seed added where there are several."""
    axes = [a for a in group_axes(group) if a not in ("trial", "state")] or ["trial"]
    by_folder = {run.path.name: run for run in group.runs}
    seeds = len({r.get("seed") for r in group.rows}) > 1
    named, seen = [], set()
    for row in group.rows:
        run = by_folder.get(text_of(row.get("run")))
        if run is None or run.path.name in seen:
            continue
        seen.add(run.path.name)
        name = ", ".join(
            text_of(row.get(a)) if a == "step" else f"{a}={text_of(row.get(a))}" for a in axes
        )
        named.append((name + (f" seed {text_of(row.get('seed'))}" if seeds else ""), run))
    named += [(run.path.name, run) for run in group.runs if run.path.name not in seen]
    return named


def model_blocks(runs: list[Run], skipped: list[str]) -> list[Block]:
    """The layer table each run recorded (layers.txt), once per distinct table.

    The table is the one written when the run started, not rebuilt from today's code.
    """
    from tinyvision.experiment.folder import LAYERS
    from tinyvision.records_read import read_text

    seen, blocks = set(), []
    for run in runs:
        path = run.path / LAYERS
        if not path.is_file() or path.is_symlink():
            continue  # runs from before layers.txt, or timm models' tables: nothing to show
        try:
            table = printable_block(read_text(path))
        except UserError as e:
            skipped.append(f"{path}: no layer table ({text_of(e)})")
            continue
        if table in seen:
            continue
        seen.add(table)
        blocks += [para(f"{run.model} (as in {run.path.name})"), Block("pre", table)]
    return blocks


def printable_block(text: str) -> str:
    """Several lines of recorded text, each shown literally (no control characters)."""
    return "\n".join(printable(line) for line in text.splitlines()[:400])


def environment_blocks(runs: list[Run]) -> list[Block]:
    versions = runs[0].summary.get("versions", {}) if runs else library_versions()
    versions = versions if isinstance(versions, dict) else {}
    devices = sorted({text_of(r.summary.get("device")) for r in runs}) or ["(no runs)"]
    commit = text_of(versions.get("tinyvision_commit", "unknown"))
    rows = [("tinyvision", f"{__version__} (commit {commit})"), ("devices", ", ".join(devices))]
    rows += [
        (text_of(k), text_of(v))
        for k, v in versions.items()
        if k not in ("tinyvision", "tinyvision_commit")
    ]
    return [
        Block("h2", "Environment"),
        Block("table", header=("what", "version"), rows=tuple(rows)),
    ]


def _data_rows(runs: list[Run]) -> list[tuple[str, ...]]:
    """Where each run's data came from: folders, files and their md5, or the source."""
    seen, rows = set(), []
    for run in runs:
        data = run.summary.get("data")
        if not isinstance(data, dict):
            continue
        dataset = text_of(data.get("dataset"))
        for split in ("train", "test"):
            info = data.get(split)
            files_md5 = info.get("files") if isinstance(info, dict) else None
            if not isinstance(files_md5, dict):
                continue
            folder = text_of(info.get("folder"))
            for file, md5 in files_md5.items():
                if (dataset, folder, file) not in seen:
                    seen.add((dataset, folder, file))
                    rows.append((dataset, split, folder, text_of(file), text_of(md5)))
        source = text_of(data.get("source"))
        if "source" in data and (dataset, source) not in seen:
            seen.add((dataset, source))
            rows.append((dataset, "both", source, "", ""))
    return rows


def data_blocks(runs: list[Run], tour: dict | None) -> list[Block]:
    blocks = [Block("h2", "Data")]
    if tour:  # its shape was checked by collect
        rows = tuple(
            (text_of(part), text_of(info.get("dataset")), text_of(info.get("why")))
            for part, info in tour["parts"].items()
        )
        blocks.append(Block("table", header=("part", "ran on", "why"), rows=rows))
        for name, how in tour.get("missing", {}).items():
            blocks.append(para(f"{text_of(name)} was not available here: {text_of(how)}"))
    header = ("dataset", "split", "from", "file", "md5")
    blocks.append(Block("table", header=header, rows=tuple(_data_rows(runs))))
    return blocks


def skipped_blocks(skipped: list[str]) -> list[Block]:
    if not skipped:
        return []
    return [
        Block("h2", "Skipped"),
        para("These folders and files could not be used; each line says why."),
        Block("table", header=("left out: why",), rows=tuple((text_of(s),) for s in skipped)),
    ]


def build(records: Records) -> list[Block]:
    groups, tour, skipped = records.groups, records.tour, records.skipped
    grouped_paths = {r.path for g in groups for r in g.runs}
    loose = [r for r in records.runs if r.path not in grouped_paths]
    intro = (
        f"Written {time.strftime('%Y-%m-%d %H:%M')} from {len(loose)} runs and "
        f"{len(groups)} sweeps or studies."
    )
    if not loose and not groups:
        intro += " No usable run was found."
    if skipped:
        what = "folder or file was" if len(skipped) == 1 else "folders or files were"
        intro += f" {len(skipped)} {what} left out: see Skipped, at the end."
    blocks = [Block("h1", "tinyvision lab report"), para(intro)]
    if tour:
        blocks.append(para(text_of(tour["summary"])))
    blocks += overview_blocks(loose, groups, tour, group_axes)
    blocks += questions_blocks(records)
    blocks += [Block("h2", "Contents"), Block("toc")]
    for key, title in PRACTICALS.items():
        mine = [r for r in loose if practical_of(r.preset, r.model) == key]
        my_groups = [g for g in groups if group_practical(g) == key]
        if not mine and not my_groups:
            continue
        blocks.append(Block("h2", title))
        variants = variant_runs(mine)
        if len(variants) > 1:  # they must agree: one comparison, then each one's details
            blocks += variants_blocks(variants)
        for run in course_order(mine):
            blocks += run_blocks(run, show_curves=run not in variants)
        for group in my_groups:
            blocks += group_blocks(group)
        models = model_blocks(mine + [r for g in my_groups for r in g.runs[:1]], skipped)
        if models:
            title = "Models: layer tables"
            heading = Block("h3", title, key=f"models:{key}")
            blocks += [heading, Block("details", title), *models, Block("/details")]
    all_runs = loose + [r for g in groups for r in g.runs]
    tail = environment_blocks(all_runs) + data_blocks(all_runs, tour)
    return blocks + tail + skipped_blocks(skipped)


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #aaa}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}td,th{border:1px solid #ccc;
padding:.25em .5em;text-align:right}th{background:#f0f0f0}td:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0}pre{background:#f7f7f7;padding:.6em;
overflow-x:auto;font-size:.8em}figure{margin:.5em 0}figcaption{font-size:.8em;color:#666}
details{margin:.4em 0 1em}summary{cursor:pointer;color:#345}nav.toc ul{margin:.2em 0}
table.prose td,table.prose th{text-align:left;vertical-align:top}"""


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A table with every header and cell escaped (the records are untrusted)."""
    import pandas as pd

    cells = [[str(c) for c in row] for row in rows]
    return pd.DataFrame(cells, columns=list(header)).to_html(index=False, escape=True, border=0)


def _html_part(p: Part, links: dict[str, str]) -> str:
    if isinstance(p, Code):
        return f"<code>{html.escape(p.text)}</code>"
    if isinstance(p, Link):
        if p.target in links:  # an anchor is letters, digits and dashes: never markup
            return f"<a href='#{links[p.target]}'>{html.escape(p.text)}</a>"
        return html.escape(p.text)
    return html.escape(str(p))


def _html_parts(parts: tuple[Part, ...], links: dict[str, str] | None = None) -> str:
    return "".join(_html_part(p, links or {}) for p in parts)


def anchors(blocks: list[Block]) -> dict[int, str]:
    """An id for every h2 and h3 (by block index): letters, digits and dashes only, so a
    heading made of a folder's name is never markup in an attribute either."""
    found, used = {}, set()
    for i, b in enumerate(blocks):
        if b.kind in ("h2", "h3"):
            base = re.sub(r"[^a-z0-9]+", "-", printable(b.text).lower()).strip("-")[:60] or "part"
            anchor, n = base, 1
            while anchor in used:
                n += 1
                anchor = f"{base}-{n}"
            used.add(anchor)
            found[i] = anchor
    return found


def targets(blocks: list[Block], ids: dict[int, str]) -> dict[str, str]:
    """The anchor of each block with a key: where a `Link` to that key leads."""
    return {blocks[i].key: anchor for i, anchor in ids.items() if blocks[i].key}


def contents(blocks: list[Block], ids: dict[int, str]) -> list[tuple[int, str, str]]:
    """(level, title, anchor) of the headings after the contents block: what it lists."""
    start = next((i for i, b in enumerate(blocks) if b.kind == "toc"), len(blocks))
    return [(int(blocks[i].kind[1]), blocks[i].text, a) for i, a in ids.items() if i > start]


def _html_contents(entries: list[tuple[int, str, str]]) -> str:
    """A list of the h2 sections, each holding the list of its h3 ones."""
    out, nested = ["<nav class='toc'><ul>"], False
    for level, title, anchor in entries:
        link = f"<a href='#{anchor}'>{html.escape(title)}</a>"
        if level == 2:
            out.append("</ul></li>" if nested else "</li>" if len(out) > 1 else "")
            out.append(f"<li>{link}")
            nested = False
        else:
            out.append("" if nested else "<ul>")
            out.append(f"<li>{link}</li>")
            nested = True
    out.append("</ul></li>" if nested else "</li>" if len(out) > 1 else "")
    out.append("</ul></nav>")
    return "".join(out)


def render_html(blocks: list[Block]) -> str:
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>tinyvision lab report</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    ids = anchors(blocks)
    links = targets(blocks, ids)
    for i, b in enumerate(blocks):
        if b.kind == "h1":
            out.append(f"<h1>{html.escape(b.text)}</h1>")
        elif b.kind in ("h2", "h3"):
            out.append(f"<{b.kind} id='{ids[i]}'>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "toc":
            out.append(_html_contents(contents(blocks, ids)))
        elif b.kind == "details":
            out.append(f"<details><summary>{html.escape(b.text)}</summary>")
        elif b.kind == "/details":
            out.append("</details>")
        elif b.kind == "p":
            out.append(f"<p>{_html_parts(b.parts, links)}</p>")
        elif b.kind == "pre":
            out.append(f"<pre>{html.escape(b.text)}</pre>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{_html_part(c, links)}</td>" for c in row) + "</tr>"
                for row in b.rows
            )
            table = "<table class='prose'>" if b.prose else "<table>"
            out.append(f"{table}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "figure" and b.figure is not None:
            data = base64.b64encode(b.figure.data).decode()
            out.append(
                f"<figure><img src='data:{b.figure.mime};base64,{data}' "
                f"alt='{html.escape(b.text)}'><figcaption>{html.escape(b.text)}</figcaption>"
                "</figure>"
            )
    out.append("</body></html>")
    return "\n".join(out)


# Markdown: backslash before what could start emphasis, code, links or a table cell;
# HTML's own characters as entities, so no text from the records is ever a tag.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_LINE_START = re.compile(r"^(\s*)([#+=-]|\d+[.)])")
_CODE_SAFE = re.compile(r"[^`<>&|\\]+")


def md_escape(text: str) -> str:
    escaped = _MD_SPECIAL.sub(r"\\\1", printable(text))
    return html.escape(escaped, quote=False)


def _md_line(text: str) -> str:
    """A paragraph or cell never starts a heading, list or quote by its first characters."""
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text, count=1)


def _md_code(text: str) -> str:
    text = printable(text)
    if _CODE_SAFE.fullmatch(text) and text.strip() == text:
        return f"`{text}`"
    return f"<code>{md_escape(text)}</code>"  # an HTML code span holding escaped text


def _md_part(p: Part, links: dict[str, str]) -> str:
    if isinstance(p, Code):
        return _md_code(p.text)
    if isinstance(p, Link):
        text = md_escape(p.text)
        return f"[{text}](#{links[p.target]})" if p.target in links else text
    return md_escape(str(p))


def _md_parts(parts: tuple[Part, ...], links: dict[str, str] | None = None) -> str:
    return _md_line("".join(_md_part(p, links or {}) for p in parts))


def _asset_name(number: int, figure: Figure) -> str:
    """A plain file name (letters, digits, . _ -) whatever the folder was called."""
    stem = f"{number:03d}-{figure.path.parent.name}-{figure.path.stem}"
    suffix = ".gif" if figure.mime == "image/gif" else ".png"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:120] + suffix


def render_markdown(blocks: list[Block], assets: Path) -> str:
    out, copied = [], 0
    ids = anchors(blocks)
    links = targets(blocks, ids)
    for i, b in enumerate(blocks):
        if i in ids:  # an explicit anchor: the contents' links work in any renderer
            out.append(f"<a id='{ids[i]}'></a>\n")
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + md_escape(b.text))
        elif b.kind == "toc":
            out += [
                "  " * (level - 2) + f"- [{md_escape(title)}](#{anchor})"
                for level, title, anchor in contents(blocks, ids)
            ]
        elif b.kind == "details":  # GitHub and most renderers fold these
            out.append(f"<details><summary>{md_escape(b.text)}</summary>\n")
        elif b.kind == "/details":
            out.append("</details>")
        elif b.kind == "p":
            out.append(_md_parts(b.parts, links))
        elif b.kind == "pre":
            longest = max((len(r) for r in re.findall("`+", b.text)), default=0)
            fence = "`" * max(3, longest + 1)
            out.append(f"{fence}\n{b.text}\n{fence}")
        elif b.kind == "table":
            out.append("| " + " | ".join(md_escape(h) for h in b.header) + " |")
            out.append("|" + " --- |" * len(b.header))
            out += ["| " + " | ".join(_md_part(c, links) for c in row) + " |" for row in b.rows]
        elif b.kind == "figure" and b.figure is not None:
            copied += 1
            name = _asset_name(copied, b.figure)
            (assets / name).write_bytes(b.figure.data)
            out.append(f"![{md_escape(b.text)}]({assets.name}/{name})")
        out.append("")
    return "\n".join(out)


def _warn(line: str) -> None:
    print(f"tinyvision: {line}", file=sys.stderr)


def _fresh_assets(out: Path) -> Path:
    """An empty report_assets/ in `out`; a link there is removed, never followed."""
    assets = out / "report_assets"
    if assets.is_symlink() or (assets.exists() and not assets.is_dir()):
        assets.unlink()
    shutil.rmtree(assets, ignore_errors=True)
    assets.mkdir()
    return assets


def write_report(paths: list[Path], out: Path, warn: Callable[[str], None] = _warn) -> Path:
    """report.html and report.md (with report_assets/) in `out`; returns the HTML path.

    Each folder or file left out is passed to `warn` (one line: which and why) and
    listed in the report's Skipped section.
    """
    records = collect(paths)
    blocks = build(records)
    for line in records.skipped:
        warn(line)
    try:
        out.mkdir(parents=True, exist_ok=True)
        assets = _fresh_assets(out)
        io.write_text(out / "report.md", render_markdown(blocks, assets))
        io.write_text(out / "report.html", render_html(blocks))
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UserError(
            f"{out}: cannot write the report there ({reason}); "
            "give --out a writable folder with free space"
        ) from None
    return out / "report.html"
