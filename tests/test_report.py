"""The lab report and the tour: contents from the records, and a real browser opening it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tinyvision.cli import main
from tinyvision.experiment.runner import run
from tinyvision.groups.sweep import run_sweep
from tinyvision.presets import build_config
from tinyvision.report.html import write_report

ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("records")
    for variant in ("manual", "autograd"):  # variants that must agree: one comparison
        run(build_config(f"1ab-circles-{variant}", ["train.epochs=5"]), out, "cpu", quiet=True)
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


def test_report_opens_with_the_overview_and_contents(records):
    import re

    html = write_report([records], records).read_text()
    md = (records / "report.md").read_text()
    for text, practical in ((html, "id='practical-1-ab"), (md, "## Practical 1-ab")):
        # the overview and the contents come before the first practical's section
        assert text.index("Overview") < text.index("Contents") < text.index(practical)
        assert "the course reports" in text and "92-95%" in text  # circles: the course's
        assert "numbers are for CIFAR-10; these runs used digits" in text
        assert "The MLP 2 ways: one comparison" in text
        assert "Largest difference in training loss between them at any epoch" in text
        assert "<details><summary>" in text and text.count("<details>") == text.count("</details>")
    ids = set(re.findall(r"<h[23] id='([a-z0-9-]+)'>", html))
    links = re.findall(r"<a href='#([a-z0-9-]+)'>", html)
    assert links and set(links) <= ids  # every entry of the contents leads somewhere
    assert len(links) == len(set(links))
    md_links = re.findall(r"\]\(#([a-z0-9-]+)\)", md)
    assert set(md_links) == set(links) and set(md_links) <= set(re.findall(r"<a id='([^']+)'>", md))
    # the variants' own sections are folded: no picture between their heading and the fold
    section = html[html.index("<h3 id='1ab-circles-autograd") :]
    assert "<img" not in section[: section.index("<details>")]


def test_the_overview_says_whether_the_course_conclusions_hold():
    from tinyvision.report.overview import ablation_verdict, vit_verdict

    rising = [("step=baseline", 60.0, 0.4, 2), ("step=standardize", 59.8, 0.3, 2)]
    assert ablation_verdict(rising).endswith("reproduced.")  # a 0.2 drop, within 0.4
    falling = [("step=augment", 70.0, 0.1, 2), ("step=schedule", 68.0, 0.2, 2)]
    verdict = ablation_verdict(falling)
    assert "not reproduced" in verdict and "step=schedule is 2.00 points below" in verdict
    assert "one seed" in ablation_verdict([("a", 1.0, 0.0, 1), ("b", 2.0, 0.0, 1)])
    assert "competitive" in vit_verdict({"step=vit": 97.1, "step=cnn": 97.8})
    assert "does not reproduce" in vit_verdict({"step=vit": 90.0, "step=cnn": 97.8})
    # the tuned ViT is the one compared; the course's defaults are still reported
    both = vit_verdict({"step=vit": 90.0, "step=vit-tuned": 97.5, "step=cnn": 97.8})
    assert both.startswith("The tuned ViT (97.50%) is competitive with the CNN (97.80%)")
    assert "defaults reaches 90.00%" in both
    behind = vit_verdict({"step=vit": 97.5, "step=vit-tuned": 95.0, "step=cnn": 97.8})
    assert "leads the tuned ViT (95.00%) by 2.80 points" in behind


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
        # the overview opens the page, and every entry of the contents leads to its section
        overview = page.locator("#overview")
        assert overview.is_visible() and overview.bounding_box()["y"] < 400
        targets = page.evaluate(
            "Array.from(document.querySelectorAll('nav.toc a'))"
            ".map(a => !!document.getElementById(a.hash.slice(1)))"
        )
        assert len(targets) >= 6 and all(targets)
        page.click("nav.toc a[href='#environment']")
        assert page.evaluate("location.hash") == "#environment"
        top = page.evaluate("document.getElementById('environment').getBoundingClientRect().top")
        assert page.evaluate("window.scrollY") > 0 and 0 <= top < 900, "scrolled to it"
        # details are folded until opened
        assert page.locator("details[open]").count() == 0
        fold = page.locator("details").first
        fold.locator("summary").click()
        assert fold.evaluate("d => d.open")
        browser.close()
    assert len(images) >= 5
    broken = [alt for complete, width, alt in images if not complete or width == 0]
    assert not broken, f"images that did not load: {broken}"
    assert not errors, f"console errors: {errors}"
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_quick_tour_offline_on_builtin_data(tmp_path, monkeypatch, capsys):
    from tinyvision import tour

    monkeypatch.setitem(
        tour.BUDGETS, "quick", {"train": 300, "test": 100, "epochs": 1, "vit_epochs": 2}
    )
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
        "1e-vit-vs-cnn: vit-tuned",  # the tuned ViT's row in the overview
    ):
        assert text in html, text
    # the attention pictures are the course ViT's (class token), not the tuned one's
    (study,) = (tmp_path / "tour-quick").glob("study-1e-vit-vs-cnn-*")
    assert (study / "step=vit_seed0" / "attention_maps.png").is_file()
    assert not (study / "step=vit-tuned_seed0" / "attention_maps.png").exists()
    # the ViT comparison has its own epoch budget
    tuned = json.loads((study / "step=vit-tuned_seed0" / "config.json").read_text())
    assert tuned["train"]["epochs"] == 2 and tuned["model"]["stem"] == "conv"
