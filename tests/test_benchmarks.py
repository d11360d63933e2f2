"""The benchmarks: the machine description (the peak estimate must follow the CPU's vector
width), and time to accuracy end to end on the digits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import machine  # noqa: E402
from pipeline import flops_per_cycle  # noqa: E402
from time_to_accuracy import describe_sizing  # noqa: E402

AVX512 = {"avx2", "fma", "avx512f"}


@pytest.mark.parametrize(
    ("flags", "amd", "family", "expected"),
    [
        (AVX512, False, 6, 64),  # Intel: two 512-bit FMA units
        (AVX512, True, 25, 32),  # Zen 4: AVX-512 in two 256-bit halves
        (AVX512, True, 26, 64),  # Zen 5 server cores: full width
        (AVX512, True, None, 32),  # family unknown: the cautious estimate
        ({"avx2", "fma"}, True, 23, 32),  # AVX2 only
        (set(), False, None, 8),
    ],
)
def test_flops_per_cycle_follows_the_vector_width(flags, amd, family, expected):
    assert flops_per_cycle(flags, amd, family)[0] == expected


def test_cpu_family_reads_proc_cpuinfo(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n")
    monkeypatch.setattr(machine, "Path", lambda _: info)
    assert machine.cpu_family() == 26
    info.write_text("processor\t: 0\n")
    assert machine.cpu_family() is None


@pytest.mark.parametrize(
    ("family", "flags", "expected"),
    [
        (25, {"avx2", "fma"}, "Zen 3"),  # EPYC 7003 (Milan): AVX2 only
        (25, AVX512, "Zen 4"),
        (26, AVX512, "Zen 5"),
        (23, {"avx2", "fma"}, "Zen 1/Zen 2"),
        (None, AVX512, None),
    ],
)
def test_amd_generation_tells_zen_3_from_zen_4_by_avx512(family, flags, expected):
    assert machine.amd_generation(family, flags) == expected


def test_time_to_accuracy_watches_sized_runs():
    """Two seeds of the fast recipe on the digits, run at once, each shortened by a budget
    shorter than an epoch: each seed's line has the time to the target, the final accuracy
    and the sizing against the epochs' length."""
    script = Path(__file__).parents[1] / "benchmarks" / "time_to_accuracy.py"
    tiny = ["data.name=digits", "data.crop=8", "data.pad=1", "train.batch_size=64"]
    command = [sys.executable, str(script), "--seeds", "2", "--jobs", "2"]
    command += ["--baseline-seeds", "0"]
    command += ["--target", "1", *tiny, "model.width=8", "train.epochs=3"]
    result = subprocess.run(
        [*command, "train.threads=1", "train.time_budget=0.001"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "2 run(s) at once" in result.stdout
    for seed in (0, 1):
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"  seed {seed}:"))
        assert re.search(r"target at +[\d.]+ s \(epoch 1\), final [\d.]+% after 1 epochs", line)
        assert re.search(r"sized to 1 of 3 epochs by a 0.001 s budget: estimated [\d.]+ s", line)
    assert "fashion-fast data.name=digits" in result.stdout
    assert re.search(r"reached 1.0%: 2/2 seeds, mean \d+ s, mean 1.0 epochs", result.stdout)


def test_time_to_accuracy_names_a_second_plan(tmp_path):
    """A run whose count changed after its first epoch: the sizing names both counts and
    the first epoch's length; one whose count held reads as before."""
    run = tmp_path / "fashion-fast-1"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,test_acc,epoch_seconds\n0,10,5\n1,80,20\n2,85,22\n")
    record = {"seconds": 120, "asked_epochs": 20, "epochs": 5, "epoch_estimate_s": 26.0}
    record |= {"planned_epochs": 4, "first_epoch_s": 20.0}
    (run / "summary.json").write_text(json.dumps({"time_budget": record}))
    assert describe_sizing(tmp_path) == (
        "; sized to 5 of 20 epochs by a 120 s budget (planned 4 before the first epoch, "
        "which took 20.0 s): estimated 26.0 s an epoch, measured 21.0 s"
    )
    record["planned_epochs"] = 5
    (run / "summary.json").write_text(json.dumps({"time_budget": record}))
    assert "planned" not in describe_sizing(tmp_path)


def test_vit_epoch_counts_each_presets_test_views():
    """The course ViT evaluates on the images as they are, vit-fashion on 6 views (flips,
    and 1-pixel shifts each way) every 4th epoch; each line's ratios are to the first
    preset's."""
    script = Path(__file__).parents[1] / "benchmarks" / "vit_epoch.py"
    command = [sys.executable, str(script), "--presets", "1e-vit-mnist,vit-fashion"]
    command += ["--rounds", "1", "--steps", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    course, tuned = (x for x in result.stdout.splitlines() if "an epoch" in x)
    assert course.startswith("1e-vit-mnist:") and "1 test view(s)" in course
    assert "(x1.00)" in course and tuned.startswith("vit-fashion:")
    assert "6 test view(s) every 4 epochs" in tuned  # train.eval_every=4
    test = float(re.search(r"test ([\d.]+) s =", tuned).group(1))
    forward = float(re.search(r"forward ([\d.]+) ms", tuned).group(1))
    assert test == pytest.approx(10 * 6 * forward / 1000 / 4, abs=0.06)
    # the run: epoch 0 (70 forward passes of 1,000 images) and the preset's 16 epochs
    epoch = float(re.search(r"= ([\d.]+) s an epoch", tuned).group(1))
    minutes = float(re.search(r"16 epochs: ([\d.]+) min", tuned).group(1))
    assert minutes == pytest.approx((70 * forward / 1000 + 16 * epoch) / 60, abs=0.06)
