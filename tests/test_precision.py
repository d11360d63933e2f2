"""train.amp=auto and train.channels_last=auto: chosen by a timed probe, cached, forceable."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tinyvision.experiment.runner import run
from tinyvision.io import read_csv
from tinyvision.presets import build_config
from tinyvision.train import precision
from tinyvision.train.precision import BF16_MARGIN, Candidate

# The probe and its cache are what is tested here: not the session's shared timings.
pytestmark = pytest.mark.own_probe_cache

TINY = [
    "data.name=digits",
    "data.train_subset=256",
    "data.test_subset=128",
    "train.epochs=2",
    "train.batch_size=64",
    "optim.lr=0.05",
]
TIMING = {"epoch_seconds", "images_per_second"}
SHAPE = (1, 8, 8)


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def _fake_timer(seconds: dict[str, float], calls: list[str] | None = None):
    """Runs each step (the probe's code is exercised) but reports made-up durations."""

    def timer(candidate: Candidate, step) -> float:
        step()
        if calls is not None:
            calls.append(candidate.name)
        return seconds[candidate.name]

    return timer


def _choose(amp="auto", channels_last="auto", timer=None, model_id="m", batch=16):
    return precision.choose(
        amp,
        channels_last,
        _model(),
        lambda params: torch.optim.SGD(params, lr=0.1),
        SHAPE,
        batch,
        10,
        torch.device("cpu"),
        model_id=model_id,
        timer=timer or _fake_timer(SLOW_FP32),
    )


SLOW_FP32 = {"fp32": 4.0, "fp32+channels_last": 3.0, "bf16": 2.0, "bf16+channels_last": 1.0}
SLOW_BF16 = {"fp32": 1.0, "fp32+channels_last": 2.0, "bf16": 3.0, "bf16+channels_last": 4.0}


@pytest.mark.parametrize(
    ("seconds", "amp", "nhwc"), [(SLOW_FP32, True, True), (SLOW_BF16, False, False)]
)
def test_probe_picks_the_faster(seconds, amp, nhwc):
    calls: list[str] = []
    chosen = _choose(timer=_fake_timer(seconds, calls))
    assert (chosen.amp, chosen.channels_last, chosen.source) == (amp, nhwc, "probe")
    # one warm-up step and three timed ones each, the candidates interleaved
    assert calls == list(seconds) * 4
    assert chosen.images_per_s == {name: 16 / s for name, s in seconds.items()}
    record = chosen.record()
    assert record["amp"] == ("bf16" if amp else "none") and record["probed"] is True
    assert record["fp32_images_per_s"] == 16 / seconds["fp32+channels_last" if nhwc else "fp32"]


def test_a_candidate_far_behind_on_a_few_images_is_not_timed_on_the_full_batch():
    """As bf16 on a CPU without bf16 instructions: 15x slower, and most of the probe."""
    emulated = {"fp32": 1.0, "fp32+channels_last": 0.9, "bf16": 10.0, "bf16+channels_last": 9.0}
    calls: list[str] = []
    chosen = _choose(timer=_fake_timer(emulated, calls), batch=64)
    # 16 images each, warm-up and timed; then only the float32 ones on 64, as before
    assert calls == list(emulated) * 2 + ["fp32", "fp32+channels_last"] * 4
    assert (chosen.amp, chosen.channels_last) == (False, True)
    assert chosen.images_per_s == {
        "fp32": 64 / 1.0,
        "fp32+channels_last": 64 / 0.9,
        "bf16": 16 / 10.0,  # what was measured, on the few images
        "bf16+channels_last": 16 / 9.0,
    }
    close = {**emulated, "bf16": 3.0, "bf16+channels_last": 3.5}  # within the factor
    calls.clear()
    _choose(timer=_fake_timer(close, calls), batch=64, model_id="other")
    assert calls[8:] == list(close) * 4, "every candidate timed on the full batch"


def test_bf16_must_win_clearly():
    """bf16 costs precision: a gain within the probe's noise keeps float32."""
    close = {"fp32": 1.0, "fp32+channels_last": 1.2, "bf16": 0.95, "bf16+channels_last": 1.1}
    chosen = _choose(timer=_fake_timer(close))
    assert (chosen.amp, chosen.channels_last) == (False, False)
    clear = {**close, "bf16": 0.8}
    assert _choose(timer=_fake_timer(clear), model_id="other").amp


def test_a_failing_candidate_is_never_chosen():
    def timer(candidate: Candidate, step) -> float:
        if candidate.amp:
            raise RuntimeError("no bf16 kernel for this operation")
        return SLOW_FP32[candidate.name]

    chosen = _choose(timer=timer)
    assert not chosen.amp and chosen.images_per_s["bf16"] == 0.0
    assert not list((precision.cache_dir() / "precision").glob("*.json")), "not remembered"


def test_second_call_reads_the_cache_and_a_damaged_one_is_rewritten():
    first = _choose()
    calls: list[str] = []
    second = _choose(timer=_fake_timer(SLOW_BF16, calls))
    assert calls == [] and second.source == "cache"
    assert (second.amp, second.channels_last) == (first.amp, first.channels_last)
    assert second.images_per_s == first.images_per_s
    other = _choose(timer=_fake_timer(SLOW_BF16, calls), model_id="another model")
    assert other.source == "probe" and not other.amp, "another model shape: its own entry"

    (path,) = [
        p
        for p in (precision.cache_dir() / "precision").glob("*.json")
        if json.loads(p.read_text())["key"]["model"] == _digest("m")
    ]
    negative = json.loads(path.read_text())
    negative["images_per_s"]["fp32"] = -1.0
    for damage in (b"\x00{not json", b'{"key": 1}', b"[]", json.dumps(negative).encode()):
        path.write_bytes(damage)
        again = _choose(timer=_fake_timer(SLOW_BF16))
        assert again.source == "probe" and not again.amp
        assert json.loads(path.read_text())["images_per_s"] == again.images_per_s
        assert _choose().source == "cache", "rewritten whole"


def _digest(model_id: str) -> str:
    return precision.cache_key(model_id, SHAPE, 16, 10, "cpu", [])["model"]


def test_the_cache_is_per_instruction_set_torch_uses(monkeypatch):
    """The same CPU held back to AVX2 (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY) times
    otherwise, so it has its own entry: the choice timed with bf16 instructions is not it."""
    key = precision.cache_key("m", SHAPE, 16, 10, "cpu", [])
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    held_back = precision.cache_key("m", SHAPE, 16, 10, "cpu", [])
    assert held_back["machine"]["onednn_isa"] == "AVX2"
    assert precision.cache_path(held_back) != precision.cache_path(key)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "NO AVX")
    assert precision.cache_key("m", SHAPE, 16, 10, "cpu", [])["machine"]["isa"] == "NO AVX"
    assert precision.cache_key("m", SHAPE, 16, 10, "cpu", []) != held_back


def test_an_unwritable_cache_is_no_error(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where a folder should be
    assert _choose().source == "probe"
    assert _choose().source == "probe"


def test_forced_settings_are_not_probed():
    calls: list[str] = []
    timer = _fake_timer(SLOW_FP32, calls)
    chosen = _choose("none", False, timer)
    assert (chosen.amp, chosen.channels_last, chosen.source, calls) == (False, False, "forced", [])
    chosen = _choose("bf16", True, timer)
    assert (chosen.amp, chosen.channels_last, chosen.source, calls) == (True, True, "forced", [])
    chosen = _choose("none", "auto", timer)  # only the layout is left open
    assert (chosen.amp, chosen.channels_last) == (False, True)
    assert set(calls) == {"fp32", "fp32+channels_last"}


def test_layout_not_probed_where_it_cannot_matter():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    options = precision.candidates("auto", "auto", mlp, (64,), torch.device("cpu"))
    assert [c.name for c in options] == ["fp32", "bf16"]


def test_summary_records_the_choice(tmp_path):
    path, summary = run(build_config("cnn-fashion", TINY), tmp_path, "cpu", quiet=True)
    chosen = json.loads((path / "summary.json").read_text())["precision"]
    assert chosen == summary["precision"]
    assert chosen["source"] == "probe" and chosen["probed"] is True
    assert set(chosen["images_per_s"]) == {
        "fp32",
        "fp32+channels_last",
        "bf16",
        "bf16+channels_last",
    }
    assert all(v > 0 for v in chosen["images_per_s"].values())
    assert summary["amp"] == chosen["amp"]
    speeds = chosen["images_per_s"]
    fp32 = max(v for k, v in speeds.items() if k.startswith("fp32"))
    bf16 = max(v for k, v in speeds.items() if k.startswith("bf16"))
    assert chosen["amp"] == ("bf16" if bf16 > fp32 * (1 + BF16_MARGIN) else "none")
    layouts = {
        k: v for k, v in speeds.items() if k.startswith(chosen["amp"].replace("none", "fp32"))
    }
    best = max(layouts, key=layouts.get)
    assert best == Candidate(chosen["amp"] == "bf16", chosen["channels_last"]).name
    again = run(build_config("cnn-fashion", TINY), tmp_path, "cpu", quiet=True)[1]["precision"]
    assert again["source"] == "cache" and again["probed"] is False


def test_hand_written_mlp_stays_float32_unprobed(tmp_path):
    cfg = build_config("1ab-circles-manual", ["train.epochs=1", "data.n_train=20"])
    cfg.train.amp, cfg.train.channels_last = "auto", "auto"
    _, summary = run(cfg, tmp_path, "cpu", quiet=True)
    assert summary["precision"]["source"] == "fixed" and summary["amp"] == "none"


def _metrics(path) -> list[dict]:
    rows = read_csv(path / "metrics.csv")
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_probe_leaves_the_run_bit_identical(tmp_path):
    """Dropout draws from torch's global generator: the probe's forward passes must not."""
    overrides = [*TINY, "model.dropout=0.5", "model.batchnorm=true"]
    probed, summary = run(build_config("cnn-fashion", overrides), tmp_path, "cpu", quiet=True)
    chosen = summary["precision"]
    assert chosen["source"] == "probe"
    force = [f"train.amp={chosen['amp']}", f"train.channels_last={chosen['channels_last']}"]
    forced, again = run(build_config("cnn-fashion", overrides + force), tmp_path, "cpu", quiet=True)
    assert again["precision"]["source"] == "forced"
    assert _metrics(probed) == _metrics(forced)
