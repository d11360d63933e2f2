"""`tinyvision report`: one self-contained HTML file and its Markdown twin.

The content is built once as a list of blocks (headings, paragraphs, tables, figures,
preformatted text) and rendered twice: HTML with every figure embedded (base64, no
network needed to view it) and Markdown with the figures copied beside it. Every
number comes from the records (summary.json, sweep.csv), never typed in.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyvision import __version__, io
from tinyvision.report.collect import PRACTICALS, Group, Run, collect, group_practical, practical_of
from tinyvision.runs.folder import library_versions


@dataclass
class Block:
    kind: str  # h1, h2, h3, p, table, figure, pre
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    path: Path | None = None


def _pct(value: Any) -> str:
    try:
        return f"{float(value):.2f}%"
    except (TypeError, ValueError):
        return ""


def _num(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return ""


def run_blocks(run: Run) -> list[Block]:
    s, c = run.summary, run.config
    final = s.get("final") or {}
    blocks = [Block("h3", f"{run.path.name}")]
    changed = " ".join(c.get("overrides") or []) or "none (the preset as it is)"
    blocks.append(
        Block(
            "p",
            f"Preset `{c.get('preset')}`; settings changed from it: `{changed}`. "
            f"Status {s.get('status')}, {s.get('epochs_done')} epochs, "
            f"{_num(s.get('seconds'))} s on {s.get('device')} "
            f"(autocast {s.get('amp', 'none')}).",
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
                    c["model"]["name"],
                    f"{s.get('params', 0):,}",
                    _pct(final.get("train_acc")),
                    _pct(final.get("test_acc")),
                    _pct(final.get("test_acc5")),
                    _pct(s.get("best_test_acc")),
                    str(s.get("best_epoch")),
                    _num(final.get("test_loss"), 4),
                ),
            ),
        )
    )
    if "svm" in s:
        blocks.append(
            Block(
                "table",
                header=("kernel", "C", "train acc", "test acc", "support vectors"),
                rows=tuple(
                    (
                        r["kernel"],
                        str(r["C"]),
                        _pct(r["train_acc"]),
                        _pct(r["test_acc"]),
                        str(r["n_support"]),
                    )
                    for r in s["svm"]
                ),
            )
        )
    blocks += [Block("figure", path=p, text=p.name) for p in run.figures]
    return blocks


def group_blocks(group: Group) -> list[Block]:
    blocks = [Block("h3", group.name)]
    spec = ", ".join(f"{k}: {v}" for k, v in group.spec.items())
    blocks.append(Block("p", f"Folder `{group.path.name}` ({spec}); {len(group.runs)} runs."))
    if group.rows:
        keys = [k for k in group.rows[0] if k not in _RESULT_SKIP]
        header = (
            *keys[: keys.index("seed")],
            "seed",
            "status",
            "epochs",
            "final test acc",
            "best test acc",
            "train-test gap",
            "params",
            "tokens",
            "seconds",
        )
        rows = []
        for r in group.rows:
            lead = tuple(r[k] for k in keys[: keys.index("seed")])
            rows.append(
                (
                    *lead,
                    r["seed"],
                    r["status"],
                    r["epochs_done"],
                    _pct(r["final_test_acc"]),
                    _pct(r["best_test_acc"]),
                    _num(r["gap"], 2),
                    _num(r["params"], 0),
                    r.get("tokens", ""),
                    _num(r["seconds"]),
                )
            )
        blocks.append(Block("table", header=header, rows=tuple(rows)))
    for name in ("comparison.png", "lr.png"):
        if (group.path / name).is_file():
            blocks.append(Block("figure", path=group.path / name, text=name))
    for run in group.runs:  # pictures a run got besides its curves (attention maps, ...)
        for figure in run.figures:
            if figure.name != "curves.png":
                caption = f"{run.path.name}: {figure.name}"
                blocks.append(Block("figure", path=figure, text=caption))
    return blocks


_RESULT_SKIP = {
    "final_test_acc_mean",
    "final_test_acc_std",
    "best_test_acc_mean",
    "best_test_acc_std",
    "run",
    "lr",
    "final_train_acc",
}


def model_blocks(runs: list[Run]) -> list[Block]:
    """The layer table of each distinct model (config and input shape) in these runs."""
    from tinyvision.config import Config
    from tinyvision.models import create_model
    from tinyvision.models.summary import format_table, summarize

    seen, blocks = set(), []
    for run in runs:
        shape = tuple(run.summary.get("input_shape") or ())
        model_cfg = run.config["model"]
        key = (json.dumps(model_cfg, sort_keys=True), shape)
        if not shape or key in seen or model_cfg["name"].startswith("timm:"):
            continue
        seen.add(key)
        cfg = Config.from_dict(run.config)
        model = create_model(cfg.model, shape, run.summary.get("classes", 10))
        title = f"{model_cfg['name']} on {'x'.join(map(str, shape))} (as in {run.path.name})"
        blocks += [Block("p", title), Block("pre", format_table(summarize(model, shape), shape))]
    return blocks


def environment_blocks(runs: list[Run]) -> list[Block]:
    versions = runs[0].summary.get("versions", {}) if runs else library_versions()
    devices = sorted({str(r.summary.get("device")) for r in runs}) or ["(no runs)"]
    rows = [
        ("tinyvision", f"{__version__} (commit {versions.get('tinyvision_commit', 'unknown')})"),
        ("devices", ", ".join(devices)),
    ]
    rows += [(k, v) for k, v in versions.items() if k not in ("tinyvision", "tinyvision_commit")]
    return [
        Block("h2", "Environment"),
        Block("table", header=("what", "version"), rows=tuple(rows)),
    ]


def data_blocks(runs: list[Run], tour: dict | None) -> list[Block]:
    blocks = [Block("h2", "Data")]
    if tour:
        rows = tuple((part, info["dataset"], info["why"]) for part, info in tour["parts"].items())
        blocks.append(Block("table", header=("part", "ran on", "why"), rows=rows))
        for name, how in tour.get("missing", {}).items():
            blocks.append(Block("p", f"{name} was not available here: {how}"))
    seen, rows = set(), []
    for run in runs:
        data = run.summary.get("data") or {}
        for split in ("train", "test"):
            info = data.get(split)
            if not isinstance(info, dict):
                continue
            for file, md5 in info.get("files", {}).items():
                key = (data.get("dataset"), info.get("folder"), file)
                if key not in seen:
                    seen.add(key)
                    rows.append(
                        (str(data.get("dataset")), split, info.get("folder", ""), file, md5)
                    )
        if "source" in data and (data["dataset"], data["source"]) not in seen:
            seen.add((data["dataset"], data["source"]))
            rows.append((data["dataset"], "both", data["source"], "", ""))
    blocks.append(
        Block("table", header=("dataset", "split", "from", "file", "md5"), rows=tuple(rows))
    )
    return blocks


def build(runs: list[Run], groups: list[Group], tour: dict | None) -> list[Block]:
    grouped_paths = {r.path for g in groups for r in g.runs}
    loose = [r for r in runs if r.path not in grouped_paths]
    blocks = [
        Block("h1", "tinyvision lab report"),
        Block(
            "p",
            f"Written {time.strftime('%Y-%m-%d %H:%M')} from {len(loose)} runs and "
            f"{len(groups)} sweeps or studies.",
        ),
    ]
    if tour:
        blocks.append(Block("p", tour["summary"]))
    for key, title in PRACTICALS.items():
        mine = [
            r
            for r in loose
            if practical_of(r.config.get("preset", ""), r.config["model"]["name"]) == key
        ]
        my_groups = [g for g in groups if group_practical(g) == key]
        if not mine and not my_groups:
            continue
        blocks.append(Block("h2", title))
        for run in mine:
            blocks += run_blocks(run)
        for group in my_groups:
            blocks += group_blocks(group)
        layer_blocks = model_blocks(mine + [r for g in my_groups for r in g.runs[:1]])
        if layer_blocks:
            blocks += [Block("h3", "Models: layer tables"), *layer_blocks]
    all_runs = loose + [r for g in groups for r in g.runs]
    return blocks + environment_blocks(all_runs) + data_blocks(all_runs, tour)


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #aaa}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}td,th{border:1px solid #ccc;
padding:.25em .5em;text-align:right}th{background:#f0f0f0}td:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0}pre{background:#f7f7f7;padding:.6em;
overflow-x:auto;font-size:.8em}figure{margin:.5em 0}figcaption{font-size:.8em;color:#666}"""


def _inline(text: str) -> str:
    """`code` spans, escaped."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_html(blocks: list[Block]) -> str:
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>tinyvision lab report</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{_inline(b.text)}</p>")
        elif b.kind == "pre":
            out.append(f"<pre>{html.escape(b.text)}</pre>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in b.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "figure" and b.path is not None:
            mime = "image/gif" if b.path.suffix == ".gif" else "image/png"
            data = base64.b64encode(b.path.read_bytes()).decode()
            out.append(
                f"<figure><img src='data:{mime};base64,{data}' alt='{html.escape(b.text)}'>"
                f"<figcaption>{html.escape(b.text)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out)


def render_markdown(blocks: list[Block], assets: Path) -> str:
    out, copied = [], 0
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "pre":
            out.append("```\n" + b.text + "\n```")
        elif b.kind == "table":
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + " --- |" * len(b.header))
            out += ["| " + " | ".join(str(c) for c in row) + " |" for row in b.rows]
        elif b.kind == "figure" and b.path is not None:
            copied += 1
            name = f"{copied:03d}-{b.path.parent.name}-{b.path.name}"
            shutil.copyfile(b.path, assets / name)
            out.append(f"![{b.text}]({assets.name}/{name})")
        out.append("")
    return "\n".join(out)


def write_report(paths: list[Path], out: Path) -> Path:
    """report.html and report.md (with report_assets/) in `out`; returns the HTML path."""
    runs, groups = collect(paths)
    tour = None
    for root in paths:
        if (root / "tour.json").is_file():
            tour = json.loads((root / "tour.json").read_text())
    blocks = build(runs, groups, tour)
    out.mkdir(parents=True, exist_ok=True)
    assets = out / "report_assets"
    shutil.rmtree(assets, ignore_errors=True)
    assets.mkdir()
    io.write_text(out / "report.md", render_markdown(blocks, assets))
    io.write_text(out / "report.html", render_html(blocks))
    return out / "report.html"
