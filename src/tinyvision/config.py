"""Experiment configuration: dataclasses, `key=value` overrides and validation.

A run is fully described by one `Config`. Presets (see `tinyvision.presets`) hold only
what differs from these defaults, and the command line adds `section.field=value`
overrides on top. Everything is validated here, before any data is loaded, so a typo
costs one clear line instead of a traceback ten minutes into training.

This module imports no torch: `tinyvision --help` and `tinyvision list` stay instant.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tinyvision.errors import UserError

DATASETS = ("mnist", "fashion-mnist", "cifar10", "circles", "digits")
MODELS = ("mlp", "cnn", "lenet", "vit")  # plus "timm:<name>"
MLP_VARIANTS = ("manual", "autograd", "nn", "optim")
OPTIMIZERS = ("sgd", "adam", "adamw", "adagrad", "adadelta", "rmsprop")
SCHEDULES = (
    "constant",
    "step",
    "exponential",
    "cosine",
    "polynomial",
    "linear",
    "one-cycle",
    "warmup-cosine",
)
# standardize: per channel, fitted on train; course: the course's CIFAR-10 constants;
# gcn: global contrast normalization per image; zca: ZCA whitening fitted on train;
# minmax: per channel to [0, 1] from the train range; l1, l2: per image to unit norm.
NORMALIZATIONS = ("none", "standardize", "course", "gcn", "zca", "minmax", "l1", "l2")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")
ATTENTION_CHOICES = ("auto", "explicit", "fused")  # models/vit.py: MultiHeadSelfAttention


@dataclass
class DataConfig:
    name: str = "fashion-mnist"
    train_subset: int | None = None  # use only the first N training examples
    test_subset: int | None = None  # use only the first N test examples
    # Some machines hold only a test split (MNIST here): train on all of it but the
    # last `holdout` examples (after a fixed shuffle) and test on those.
    test_only: bool = False
    holdout: int = 2000
    # Images are always scaled to [0, 1] (as ToTensor does); then this, fitted on train only.
    normalize: str = "standardize"
    mean: tuple[float, ...] | None = None  # None: computed on the training split
    std: tuple[float, ...] | None = None
    crop: int | None = None  # random crop (train) / centre crop (test) to this size, pixels
    pad: int = 0  # zero padding before the random crop, pixels (translation augmentation)
    flip: bool = False  # random horizontal flip, p = 0.5
    zca_epsilon: float = 0.1  # zca: added to the covariance eigenvalues (on [0, 1] pixels)
    rotate: float = 0.0  # random rotation, up to +- this many degrees
    translate: float = 0.0  # random affine shift, up to this fraction of the size
    scale: float = 0.0  # random affine zoom in [1 - scale, 1 + scale]
    shear: float = 0.0  # random affine shear, up to +- this many degrees
    jitter: float = 0.0  # colour jitter strength: brightness, contrast, saturation +- this
    erase: float = 0.0  # random erasing: probability per image of a random rectangle
    cutout: int = 0  # cutout: a square of this many pixels zeroed at a random place
    mixup: float = 0.0  # mixup Beta(alpha, alpha); 0 = off
    cutmix: float = 0.0  # cutmix Beta(alpha, alpha); 0 = off
    n_train: int = 200  # synthetic sets only (circles)
    n_test: int = 200


@dataclass
class ModelConfig:
    name: str = "mlp"
    hidden: int = 100  # mlp: width of the hidden layer
    activation: str = "relu"
    dropout: float = 0.0  # cnn: dropout rate before the last layer
    batchnorm: bool = False  # cnn: BatchNorm2d after each convolution
    # mlp, practical 1-ab: how it is written and trained. manual: hand-written forward,
    # backward and sgd (no autograd); autograd: the same tensors with requires_grad;
    # nn: torch.nn layers, the same hand-written update; optim: torch.nn + torch.optim.
    variant: str = "optim"
    init_std: float | None = None  # weights and biases from N(0, init_std); None: torch's
    # vit (practical 1-e), the course's names and defaults
    embed_dim: int = 32
    nb_blocks: int = 2
    patch_size: int = 7
    num_heads: int = 4
    mlp_ratio: float = 4.0
    pos_embed: str = "sinusoidal"  # or "learned"
    pool: str = "cls"  # the class token, or "mean" of the patch tokens
    attention: str = "auto"  # explicit (the equations), fused (SDPA); auto: fused on GPUs only
    # timm:<name> models: ImageNet weights through timm, or a local weights file, and how
    # the 28x28 one-channel images meet a network made for 224x224 colour ones
    pretrained: bool = False
    pretrained_file: str | None = None
    timm_input: str = "native"  # native: img_size/in_chans set; repeat: 3 channels; resize: 224


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0  # sgd, rmsprop
    nesterov: bool = False  # sgd
    weight_decay: float = 0.0
    beta1: float = 0.9  # adam, adamw
    beta2: float = 0.999
    alpha: float = 0.99  # rmsprop smoothing
    rho: float = 0.9  # adadelta


@dataclass
class ScheduleConfig:
    name: str = "constant"
    interval: str = "epoch"  # "epoch" or "step": when the learning rate changes
    gamma: float = 0.95  # exponential: lr *= gamma; step: lr *= gamma every step_size
    step_size: int = 10  # step: in epochs (or steps, with interval=step)
    power: float = 2.0  # polynomial decay exponent
    warmup_epochs: float = 0.0  # warmup-cosine: linear warmup length, epochs
    min_factor: float = 0.0  # cosine/polynomial/linear: final lr as a fraction of lr
    pct_start: float = 0.3  # one-cycle: fraction of training spent increasing the lr


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 1000
    seed: int = 0
    label_smoothing: float = 0.0
    loss_reduction: str = "mean"  # gradients averaged ("mean") or summed ("sum") over a batch
    # bf16 autocast: "auto" uses it where the hardware runs it fast (CUDA with bf16, CPUs
    # with AMX tiles), "bf16" always, "none" never (float32 throughout).
    amp: str = "auto"
    channels_last: bool = True  # NHWC activations: faster convolutions on CPU and GPU
    compile: bool = False  # torch.compile the model
    logger: str = "none"  # "tensorboard": event files in the run folder (pip extra [tensorboard])


@dataclass
class Config:
    preset: str = ""
    task: str = "train"  # "train": the training loop; "svm": the 1-ab SVM comparison
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    overrides: list[str] = field(default_factory=list)  # what the user changed, for reports

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        cfg = cls()
        for key, value in d.items():
            current = getattr(cfg, key, None)
            if dataclasses.is_dataclass(current):
                for k, v in value.items():
                    if hasattr(current, k):
                        ftype = _field_types(type(current))[k]
                        setattr(current, k, _from_json_value(v, ftype))
            elif hasattr(cfg, key):
                setattr(cfg, key, value)
        return cfg


# --- overrides ------------------------------------------------------------------------


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_json_value(value: Any, ftype: Any) -> Any:
    if isinstance(value, list) and _is_tuple_type(ftype):
        return tuple(value)
    return value


def _is_tuple_type(ftype: Any) -> bool:
    args = typing.get_args(ftype)
    return typing.get_origin(ftype) is tuple or any(typing.get_origin(a) is tuple for a in args)


def split_values(text: str) -> list[str]:
    """Split `a,b,[1,2],c` on the commas that are not inside brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def parse_value(key: str, text: str, ftype: Any) -> Any:
    """Turn the text after `key=` into a value of the field's type, or explain why not."""
    origin = typing.get_origin(ftype)
    args = typing.get_args(ftype)
    optional = (origin is typing.Union or origin is types.UnionType) and type(None) in args
    if optional:
        if text.lower() in ("none", "null", ""):
            return None
        ftype = next(a for a in args if a is not type(None))
    if _is_tuple_type(ftype):
        items = [t for t in text.strip("[]()").split(",") if t.strip()]
        try:
            return tuple(float(t) for t in items)
        except ValueError:
            raise UserError(f"{key}={text}: expected numbers separated by commas") from None
    if ftype is bool:
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise UserError(f"{key}={text}: expected true or false")
    if ftype is int:
        try:
            return int(text)
        except ValueError:
            raise UserError(f"{key}={text}: expected an integer") from None
    if ftype is float:
        try:
            return float(text)
        except ValueError:
            raise UserError(f"{key}={text}: expected a number") from None
    return text


def known_keys(cfg: Config | None = None) -> list[str]:
    cfg = cfg or Config()
    keys = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            keys += [f"{f.name}.{g.name}" for g in fields(value)]
    return keys


def apply_override(cfg: Config, key: str, text: str) -> None:
    if key in ("task", "preset"):  # the two top-level strings
        setattr(cfg, key, text)
        return
    section, _, name = key.partition(".")
    target = getattr(cfg, section, None) if name else None
    if target is None or not dataclasses.is_dataclass(target) or not hasattr(target, name):
        close = [k for k in known_keys(cfg) if k.endswith("." + (name or section))]
        hint = f" (did you mean {close[0]}?)" if close else " (`tinyvision keys` lists them)"
        raise UserError(f"unknown config key '{key}'{hint}")
    ftype = _field_types(type(target))[name]
    setattr(target, name, parse_value(key, text, ftype))


def parse_assignment(arg: str) -> tuple[str, str]:
    if "=" not in arg:
        raise UserError(f"'{arg}' is not KEY=VALUE (for example train.epochs=3)")
    key, _, value = arg.partition("=")
    return key.strip(), value.strip()


def apply_overrides(cfg: Config, assignments: dict[str, Any] | list[str]) -> Config:
    items = (
        assignments.items()
        if isinstance(assignments, dict)
        else (parse_assignment(a) for a in assignments)
    )
    for key, value in items:
        apply_override(cfg, key, value if isinstance(value, str) else json.dumps(value))
    return cfg


# --- validation -----------------------------------------------------------------------


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    _require(value in allowed, f"{key}={value} is not known; choose one of {', '.join(allowed)}")


def validate(cfg: Config) -> Config:
    d, m, o, s, t = cfg.data, cfg.model, cfg.optim, cfg.schedule, cfg.train
    _one_of("data.name", d.name, DATASETS)
    _one_of("data.normalize", d.normalize, NORMALIZATIONS)
    for key in ("train_subset", "test_subset", "crop"):
        value = getattr(d, key)
        _require(value is None or value > 0, f"data.{key} must be positive, got {value}")
    _require(d.pad >= 0, f"data.pad must be >= 0, got {d.pad}")
    _require(d.zca_epsilon > 0, f"data.zca_epsilon must be positive, got {d.zca_epsilon}")
    for key in ("rotate", "translate", "scale", "shear", "jitter", "erase", "mixup", "cutmix"):
        _require(getattr(d, key) >= 0, f"data.{key} must be >= 0, got {getattr(d, key)}")
    _require(d.translate < 1 and d.scale < 1, "data.translate and data.scale must be below 1")
    _require(d.erase <= 1 and d.jitter < 1, "data.erase must be <= 1 and data.jitter below 1")
    _require(d.cutout >= 0, f"data.cutout must be >= 0, got {d.cutout}")
    _require(d.holdout > 0, f"data.holdout must be positive, got {d.holdout}")
    _require(d.n_train > 0 and d.n_test > 0, "data.n_train and data.n_test must be positive")
    for key in ("mean", "std"):
        value = getattr(d, key)
        _require(value is None or len(value) > 0, f"data.{key} needs at least one number")
    _require(d.std is None or all(v > 0 for v in d.std), "data.std values must be positive")
    if not m.name.startswith("timm:"):
        _one_of("model.name", m.name, MODELS)
    _require(len(m.name) > 5 or not m.name.startswith("timm:"), "model.name=timm: needs a name")
    _require(m.hidden > 0, f"model.hidden must be positive, got {m.hidden}")
    _one_of("model.variant", m.variant, MLP_VARIANTS)
    _one_of("model.pos_embed", m.pos_embed, ("sinusoidal", "learned"))
    _one_of("model.pool", m.pool, ("cls", "mean"))
    _one_of("model.attention", m.attention, ATTENTION_CHOICES)
    _one_of("model.timm_input", m.timm_input, ("native", "repeat", "resize"))
    for key in ("embed_dim", "nb_blocks", "patch_size", "num_heads"):
        _require(getattr(m, key) > 0, f"model.{key} must be positive, got {getattr(m, key)}")
    _require(m.mlp_ratio > 0, f"model.mlp_ratio must be positive, got {m.mlp_ratio}")
    _require(
        m.name != "vit" or m.embed_dim % m.num_heads == 0,
        f"model.embed_dim={m.embed_dim} is not divisible by model.num_heads={m.num_heads}",
    )
    _require(m.init_std is None or m.init_std > 0, "model.init_std must be positive")
    if m.variant != "optim":
        _require(m.name == "mlp", f"model.variant={m.variant} exists only for model.name=mlp")
        plain = o.name == "sgd" and o.momentum == 0 and o.weight_decay == 0
        _require(
            plain and s.name == "constant",
            f"model.variant={m.variant} updates by hand with plain SGD: use optim.name=sgd "
            "with no momentum or weight decay and schedule.name=constant (or variant=optim)",
        )
        _require(
            m.activation == "tanh" or m.variant != "manual",
            "model.variant=manual has the tanh derivative written in: use model.activation=tanh",
        )
        _require(m.dropout == 0, f"model.variant={m.variant} has no dropout: use variant=optim")
    _one_of("model.activation", m.activation, ACTIVATIONS)
    _require(0.0 <= m.dropout < 1.0, f"model.dropout must be in [0, 1), got {m.dropout}")
    _one_of("optim.name", o.name, OPTIMIZERS)
    _require(o.lr > 0, f"optim.lr must be positive, got {o.lr}")
    _require(o.momentum >= 0, f"optim.momentum must be >= 0, got {o.momentum}")
    _require(o.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {o.weight_decay}")
    _require(not o.nesterov or o.momentum > 0, "optim.nesterov=true needs optim.momentum > 0")
    _one_of("schedule.name", s.name, SCHEDULES)
    _one_of("schedule.interval", s.interval, ("epoch", "step"))
    _require(s.gamma > 0, f"schedule.gamma must be positive, got {s.gamma}")
    _require(s.step_size > 0, f"schedule.step_size must be positive, got {s.step_size}")
    _require(0 < s.pct_start < 1, f"schedule.pct_start must be in (0, 1), got {s.pct_start}")
    _require(s.warmup_epochs >= 0, "schedule.warmup_epochs must be >= 0")
    _require(t.epochs > 0, f"train.epochs must be positive, got {t.epochs}")
    _require(t.batch_size > 0, f"train.batch_size must be positive, got {t.batch_size}")
    _require(t.eval_batch_size > 0, "train.eval_batch_size must be positive")
    _require(0 <= t.label_smoothing < 1, "train.label_smoothing must be in [0, 1)")
    _one_of("train.amp", t.amp, ("auto", "none", "bf16"))
    _one_of("train.loss_reduction", t.loss_reduction, ("mean", "sum"))
    _one_of("train.logger", t.logger, ("none", "tensorboard"))
    _one_of("task", cfg.task, ("train", "svm"))
    _require(
        cfg.task != "svm" or d.name == "circles", "task=svm compares on 2-D data: data.name=circles"
    )
    return cfg
