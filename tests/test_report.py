"""The lab report and the tour: contents from the records, and a real browser opening it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tinyvision.cli import main
from tinyvision.presets import build_config
from tinyvision.report.html import write_report
from tinyvision.runs.runner import run
from tinyvision.runs.sweep import run_sweep

ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("records")
    run(build_config("1ab-circles-manual", ["train.epochs=5"]), out, "cpu", quiet=True)
    run(build_config("cnn-fashion", ["data.name=digits", "train.epochs=1"]), out, "cpu", quiet=True)
    run_sweep(
        "1ab-circles-optim",
        ["optim.lr=0.01,0.1", "train.epochs=3"],
        out=out,
        device="cpu",
        quiet=True,
    )
    return out


def test_report_holds_the_recorded_numbers(records):
    html_path = write_report([records], records)
    html = html_path.read_text()
    md = (records / "report.md").read_text()
    for text in ("Practical 1-ab", "Practical 1-cd", "Environment", "Data", "sweep of"):
        assert text in html and text in md
    import json

    (cnn,) = records.glob("cnn-fashion-*")
    best = json.loads((cnn / "summary.json").read_text())["best_test_acc"]
    assert f"{best:.2f}%" in html, "the recorded number, not a typed one"
    assert "data:image/png;base64," in html and "http://" not in html.split("<body>")[1]
    assert "features.conv1" in html, "the layer table of the CNN"
    assert md.count("](report_assets/") == len(list((records / "report_assets").iterdir()))


def test_report_command_bad_path(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _chromium() is None,
    reason="Debian's chromium is not installed (make test installs it where apt is usable)",
)
def test_report_in_a_real_browser(records):
    from playwright.sync_api import sync_playwright

    html_path = write_report([records], records)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html_path.as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
        browser.close()
    assert len(images) >= 5
    broken = [alt for complete, width, alt in images if not complete or width == 0]
    assert not broken, f"images that did not load: {broken}"
    assert not errors, f"console errors: {errors}"
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_quick_tour_offline_on_builtin_data(tmp_path, monkeypatch, capsys):
    from tinyvision import tour

    monkeypatch.setitem(tour.BUDGETS, "quick", {"train": 300, "test": 100, "epochs": 1})
    assert main(["tour", "--quick", "--out", str(tmp_path), "--device", "cpu"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("report: ")
    html = Path(last.removeprefix("report: ")).read_text()
    for text in (
        "Practical 1-ab",
        "Practical 1-cd",
        "Practical 1-e",
        "1cd-ablation",
        "1e-vit-vs-cnn",
        "svm_boundaries.png",
        "decision_boundary.gif",
        "attention_maps.png",
        "tinyvision data fetch cifar10",
    ):
        assert text in html, text
