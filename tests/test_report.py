"""The lab report and the tour: contents from the records, and a real browser opening it."""

from __future__ import annotations

import json
import re
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
        assert "the course reports" in text  # circles: the course's value, with its setup
        assert "94% test, loss 0.18 (circles, lr 0.1)" in text
        assert "numbers are for CIFAR-10; these runs used digits" in text
        assert "The MLP 2 ways: one comparison" in text
        assert "Largest difference in training loss between them at any epoch" in text
        assert "<details><summary>" in text and text.count("<details>") == text.count("</details>")
    ids = set(re.findall(r"<h[23] id='([a-z0-9-]+)'>", html))
    nav = html[html.index("<nav class='toc'>") : html.index("</nav>")]
    links = re.findall(r"<a href='#([a-z0-9-]+)'>", nav)
    assert links and set(links) <= ids  # every entry of the contents leads somewhere
    assert len(links) == len(set(links))
    md_links = re.findall(r"\]\(#([a-z0-9-]+)\)", md)
    assert set(md_links) == set(links) and set(md_links) <= set(re.findall(r"<a id='([^']+)'>", md))
    # the Questions: each question these records answer, linked to the section answering it
    questions = html[html.index("<h3 id='questions'>") : html.index("<h2 id='contents'>")]
    answered = re.findall(
        r"<tr><td>(1ab\.[QB]\d+) [^<]*</td><td><a href='#([a-z0-9-]+)'>", questions
    )
    assert [q for q, _ in answered] == ["1ab.Q11", "1ab.B1", "1ab.B1", "1ab.B2"]
    assert {target for _, target in answered} <= ids
    assert (
        "<a href='#sweep-of-1ab-circles-optim'>sweep of 1ab-circles-optim over optim.lr"
        in questions
    )
    assert "64% (loss 0.69) / 65% (loss 1.88) (the same at lr 0.0001 / lr 1)" in questions
    # the CNN's layer table, as the run recorded it, answers the arithmetic questions
    layers = re.search(r"1cd\.Q11 [^<]*</td><td><a href='#(models-[a-z0-9-]+)'>", questions)
    assert layers and layers[1] in ids
    assert "parameters on 1x8x8" in questions and "not the course&#x27;s 3x32x32" in questions
    md_questions = md[md.index("### Questions") : md.index("## Contents")]
    assert "[sweep of 1ab-circles-optim over optim.lr](#sweep-of-1ab-circles-optim)" in md_questions
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
    # One seed on n test images: a drop counts beyond the sampling error of the difference,
    # sqrt(2 * 0.9 * 0.1 / 3300) = 0.74 points at 90%; one image (0.03 points) is no drop.
    one_image = [("step=schedule", 90.0, 0.0, 1), ("step=dropout", 89.97, 0.0, 1)]
    assert ablation_verdict(one_image, 3300).endswith("on 3,300 test images: reproduced.")
    assert "not reproduced" in ablation_verdict(one_image)  # unknown n: any drop counts
    assert "reproduced." in ablation_verdict([one_image[0], ("b", 89.27, 0.0, 1)], 3300)
    from types import SimpleNamespace

    from tinyvision.report.overview import test_images

    def group(*data):
        return SimpleNamespace(runs=[SimpleNamespace(summary={"data": d}) for d in data])

    assert test_images(group({"n_test": 3300}, {"n_test": 1400})) == 1400
    # summary.json is the user's: a count of another shape is no count, never an error
    assert test_images(group("text", ["n_test"], {"n_test": True}, {"n_test": -1})) is None
    beyond = ablation_verdict([one_image[0], ("b", 89.2, 0.0, 1)], 3300)
    assert "not reproduced here, b is 0.80 points below step=schedule" in beyond
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
        # each link of the Questions leads to the section that answers the question
        questions = page.evaluate(
            """() => {
                const found = [];
                let node = document.getElementById('questions').nextElementSibling;
                while (node && !/^H[23]$/.test(node.tagName)) {
                    node.querySelectorAll('a').forEach(a => found.push(
                        [a.hash.slice(1), !!document.getElementById(a.hash.slice(1))]));
                    node = node.nextElementSibling;
                }
                return found;
            }"""
        )
        assert len(questions) >= 4 and all(ok for _, ok in questions), questions
        page.click(f"#questions ~ table a[href='#{questions[0][0]}']")
        assert page.evaluate("location.hash") == f"#{questions[0][0]}"
        top = page.evaluate(
            f"document.getElementById('{questions[0][0]}').getBoundingClientRect().top"
        )
        assert -1 <= top < 900, "the answering section is on screen (to a pixel's fraction)"
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
    printed = capsys.readouterr().out.strip().splitlines()
    last = printed[-1]
    assert last.startswith("report: ")
    # each step named as it starts, with its place in its practical and the tour's time left
    steps = [line for line in printed if " step " in line and "(tour: " in line]
    assert [line.split("  (tour: ")[0] for line in steps] == [
        "1-ab step 1/6: circles: the MLP by hand",
        "1-ab step 2/6: circles: the MLP with autograd",
        "1-ab step 3/6: circles: the MLP with torch.nn",
        "1-ab step 4/6: circles: the MLP with torch.optim",
        "1-ab step 5/6: circles: the SVM kernels",
        "1-ab step 6/6: the MLP on digits",
        "1-cd step 1/6: baseline",
        "1-cd step 2/6: + standardize",
        "1-cd step 3/6: + augment",
        "1-cd step 4/6: + schedule",
        "1-cd step 5/6: + dropout",
        "1-cd step 6/6: + batchnorm",
        "1-e step 1/4: the course's ViT",
        "1-e step 2/4: a tuned ViT",
        "1-e step 3/4: the course CNN",
        "1-e step 4/4: an MLP",
        "report step 1/1: the lab report",
    ]
    assert steps[0].endswith("(tour: 0/17 steps done, time left: estimated after the first step)")
    assert all(
        re.search(r"\(tour: \d+/17 steps done, about \d+(m\d\d)?s left\)$", s) for s in steps[1:]
    )
    assert printed[-2].startswith("tour: done in ")
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
    # runs named by their step, in the course's order, the folder as a detail
    ablation = html[html.index("<h3 id='1cd-ablation") :]
    steps = ("baseline: ", "standardize: ", "augment: ", "schedule: ", "dropout: ", "batchnorm: ")
    folded = ablation[ablation.index("<details>") :]
    places = [folded.find(f"<figcaption>{step}") for step in steps]
    assert all(p >= 0 for p in places) and places == sorted(places), places
    assert "(folder step=baseline_seed0)" in ablation
    # the key figure of each practical open, the others folded
    opening = ablation[: ablation.index("<details>")]
    assert "<figcaption>batchnorm: confusion.png (folder step=batchnorm_seed0)" in opening
    vit = html[html.index("<h3 id='1e-vit-vs-cnn") :]
    assert "<figcaption>vit: attention_maps.png" in vit[: vit.index("<details>")]
    svm = html[html.index("<h3 id='1ab-svm") :]
    assert "svm_boundaries.png" in svm[: svm.index("<details>")]
    if _chromium() is not None:
        _check_the_caveat_in_a_browser(Path(last.removeprefix("report: ")))
    # the attention pictures are the course ViT's (class token), not the tuned one's
    (study,) = (tmp_path / "tour-quick").glob("study-1e-vit-vs-cnn-*")
    assert (study / "step=vit_seed0" / "attention_maps.png").is_file()
    assert not (study / "step=vit-tuned_seed0" / "attention_maps.png").exists()
    # the ViT comparison has its own epoch budget
    tuned = json.loads((study / "step=vit-tuned_seed0" / "config.json").read_text())
    assert tuned["train"]["epochs"] == 2 and tuned["model"]["stem"] == "conv"


def test_the_overview_gives_each_course_number_its_setup(tmp_path):
    """1e-timm-scratch's course value is vit_base at 224x224 after 4 epochs, and a run of
    another timm model is warned about, as 1-cd's comparison on other data is."""
    from tinyvision.report.collect import Run
    from tinyvision.report.html import render_html
    from tinyvision.report.overview import overview_blocks

    config = {
        "preset": "1e-timm-scratch",
        "data": {"name": "mnist"},
        "model": {"name": "timm:vit_small_patch16_224"},
    }
    summary = {"status": "completed", "epochs_done": 5, "final": {"test_acc": 31.5}}
    run = Run(tmp_path / "1e-timm-scratch-x", config, summary)
    html = render_html(overview_blocks([run], [], None, lambda g: []))
    assert (
        "about 20% after 4 epochs (about 45 minutes), unstable (vit_base_patch16_224 at "
        "224 x 224, 3 channels, from scratch on MNIST)" in html
    )
    assert "84-91%" not in html
    assert (
        "measured in another setup (1e-timm-scratch: model timm:vit_small_patch16_224, not "
        "timm:vit_base_patch16_224), so compare the trend, not the numbers" in html
    )
    # the course's own model and budget: nothing to warn about
    config["model"]["name"], summary["epochs_done"] = "timm:vit_base_patch16_224", 4
    assert "another setup" not in render_html(overview_blocks([run], [], None, lambda g: []))
    # a shorter budget is flagged
    summary["epochs_done"] = 1
    html = render_html(overview_blocks([run], [], None, lambda g: []))
    assert "1e-timm-scratch: 1 epoch, not 4" in html


def test_questions_text_from_the_records_is_never_markup(tmp_path):
    """A hostile folder or step name shows as text in the Questions, in both renderings."""
    from tinyvision.report.collect import collect
    from tinyvision.report.html import build, render_html, render_markdown

    folder = tmp_path / "study-<script>alert(1)</script>"
    run = folder / "run0"
    run.mkdir(parents=True)
    spec = {"kind": "study", "study": "1cd-dropout-rate", "seeds": 1}
    (folder / "sweep.json").write_text(json.dumps(spec))
    from tinyvision.groups.sweep import RESULT_COLUMNS

    row = {"seed": 0, "status": "completed", "epochs_done": 1, "final_test_acc": 55.5}
    (folder / "sweep.csv").write_text(
        ",".join(["step", *RESULT_COLUMNS])
        + "\n"
        + ",".join(
            ["<img src=x onerror=alert(1)>|x", *(str(row.get(c, "")) for c in RESULT_COLUMNS)]
        )
        + "\n"
    )
    config = {"preset": "1cd-schedule", "data": {"name": "digits"}, "model": {"name": "cnn"}}
    (run / "config.json").write_text(json.dumps(config))
    (run / "summary.json").write_text(json.dumps({"status": "completed", "final": {}}))
    blocks = build(collect([tmp_path]))
    html = render_html(blocks)
    questions = html[html.index("<h3 id='questions'>") : html.index("<h2 id='contents'>")]
    assert "1cd.Q32 The dropout rate" in questions and "55.50%" in questions
    assert "<img" not in questions and "&lt;img src=x" in questions
    md = render_markdown(blocks, tmp_path)
    md_questions = md[md.index("### Questions") : md.index("## Contents")]
    assert "<img" not in md_questions and "\\|x" in md_questions


def _check_the_caveat_in_a_browser(report: Path) -> None:
    """A quick tour's overview says, at its top and per conclusion, that a conclusion not
    reproduced is expected at this budget and that `tinyvision tour` is where they hold."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(report.as_uri())
        caveat = page.locator("#overview ~ p", has_text="The quick tour is a smoke test").first
        assert caveat.is_visible()
        first_table = page.locator("#overview ~ table").first
        assert caveat.bounding_box()["y"] < first_table.bounding_box()["y"]
        assert "tinyvision tour" in caveat.inner_text()
        for key, what in (
            ("1-cd", "each improvement of the CNN at least as good as the one before"),
            ("1-e", "the tuned ViT competitive with the CNN"),
        ):
            line = page.locator("p", has_text=f"{key}, {what}: ").first
            assert line.is_visible()
            assert line.bounding_box()["y"] < first_table.bounding_box()["y"]
            said = line.inner_text()
            assert "reproduced, even at this budget" in said or (
                "not reproduced at this budget, as expected" in said
                and "tinyvision tour is where this conclusion holds" in said
            ), said
        browser.close()


def test_the_budget_caveat_is_the_quick_tours_alone():
    from tinyvision.report.overview import budget_caveat

    verdicts = [("1-cd", "Each step ...: not reproduced here, step=dropout is 1.00 points below")]
    verdicts.append(("1-e", "The tuned ViT (97.50%) is competitive with the CNN (97.80%)"))
    assert budget_caveat({"summary": "The full tour: ...", "mode": "full"}, verdicts) == []
    assert budget_caveat(None, verdicts) == []
    quick = budget_caveat({"summary": "The quick tour: ...", "mode": "quick"}, verdicts)
    said = ["".join(str(getattr(p, "text", p)) for p in b.parts) for b in quick]
    assert said[0].startswith("The quick tour is a smoke test")
    assert said[1].startswith("1-cd, each improvement of the CNN at least as good as the one")
    assert "not reproduced at this budget, as expected" in said[1]
    assert (
        said[2] == "1-e, the tuned ViT competitive with the CNN: reproduced, even at this budget."
    )
