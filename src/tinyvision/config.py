"""Experiment configuration: dataclasses, `key=value` overrides and validation.

A run is fully described by one `Config`. Presets (see `tinyvision.presets`) hold only
what differs from these defaults, and the command line adds `section.field=value`
overrides on top. Everything is validated here, before any data is loaded, so a typo
costs one clear line instead of a traceback ten minutes into training. A `config.json`
read back from a run folder is untrusted: `Config.from_dict` checks every key and type
exactly as the command line does.

This module imports no torch: `tinyvision --help` and `tinyvision list` stay instant.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tinyvision.errors import UserError

DATASETS = ("mnist", "fashion-mnist", "cifar10", "circles", "digits")
MODELS = ("mlp", "cnn", "lenet", "vgg", "vit")  # plus "timm:<name>"
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
# pca: PCA whitening fitted on train (the principal axes, not rotated back to pixels);
# minmax: per channel to [0, 1] from the train range; l1, l2: per image to unit norm.
NORMALIZATIONS = ("none", "standardize", "course", "gcn", "zca", "pca", "minmax", "l1", "l2")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")
ATTENTION_CHOICES = ("auto", "explicit", "fused")  # models/vit.py: MultiHeadSelfAttention
TASKS = ("train", "svm")  # svm: the MLP, then scikit-learn's SVMs on the same 2-D points
SEED_MAX = 2**63 - 1  # torch and numpy take any seed below this
MAX_POINTS = 10_000_000  # generated data sets (circles): beyond this, memory runs out
MODEL_KINDS = ("mlp", "cnn", "lenet", "vgg", "vit", "timm")  # timm: every timm:<name>


def _reads(*kinds: str, size: bool = False, argument: bool = True) -> dict[str, Any]:
    """A model.* field's metadata: the kinds of model that read it (any other refuses it),
    whether it sets the model's size (named when a model does not fit in memory), and
    whether the model's class takes it as a keyword argument of the same name."""
    assert set(kinds) <= set(MODEL_KINDS), kinds
    return {"models": kinds, "size": size, "argument": argument}


# --- validation helpers ---------------------------------------------------------------


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    _require(value in allowed, f"{key}={value} is not known; choose one of {', '.join(allowed)}")


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
    # with flip: each image mirrored at random in the first epoch, then in every other
    # epoch exactly when it was not in the one before (airbench's alternating flip), so
    # any two epochs in a row show both sides of every image
    alternate_flip: bool = False
    zca_epsilon: float = 0.1  # zca, pca: added to the covariance eigenvalues ([0, 1] pixels)
    rotate: float = 0.0  # random rotation, up to +- this many degrees
    # the test split rotated by up to +- this many degrees (the same angles at every
    # evaluation): a train/test transform mismatch, or its match, made measurable
    test_rotate: float = 0.0
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

    def validate(self) -> None:
        _one_of("data.name", self.name, DATASETS)
        _require(
            not self.alternate_flip or self.flip, "data.alternate_flip=true needs data.flip=true"
        )
        _one_of("data.normalize", self.normalize, NORMALIZATIONS)
        for key in ("train_subset", "test_subset", "crop"):
            value = getattr(self, key)
            _require(value is None or value > 0, f"data.{key} must be positive, got {value}")
        for key in (
            "pad",
            "cutout",
            "rotate",
            "test_rotate",
            "translate",
            "scale",
            "shear",
            "jitter",
            "erase",
            "mixup",
            "cutmix",
        ):
            _require(getattr(self, key) >= 0, f"data.{key} must be >= 0, got {getattr(self, key)}")
        _require(self.zca_epsilon > 0, f"data.zca_epsilon must be positive, got {self.zca_epsilon}")
        _require(self.translate < 1 and self.scale < 1, "data.translate and data.scale: below 1")
        _require(self.erase <= 1 and self.jitter < 1, "data.erase must be <= 1, data.jitter < 1")
        _require(self.holdout > 0, f"data.holdout must be positive, got {self.holdout}")
        for key in ("n_train", "n_test"):
            value = getattr(self, key)
            _require(0 < value <= MAX_POINTS, f"data.{key} must be in 1..{MAX_POINTS}, got {value}")
        for key in ("mean", "std"):
            value = getattr(self, key)
            _require(value is None or len(value) > 0, f"data.{key} needs at least one number")
        _require(self.std is None or all(v > 0 for v in self.std), "data.std values must be > 0")


@dataclass
class ModelConfig:
    """Every model's settings, each field declared once with the kinds of model that read
    it (`_reads`): MODEL_KEYS, SIZE_KEYS and the models' keyword arguments come from here."""

    name: str = "mlp"
    # mlp: width of the hidden layer
    hidden: int = field(default=100, metadata=_reads("mlp", size=True))
    activation: str = field(default="relu", metadata=_reads("mlp", "cnn", "lenet", "vgg"))
    # cnn: dropout rate before the last layer
    dropout: float = field(default=0.0, metadata=_reads("mlp", "cnn", "vgg"))
    # cnn: BatchNorm2d after each convolution
    batchnorm: bool = field(default=False, metadata=_reads("cnn"))
    # vgg: channels of the first block (then 2x, 4x)
    width: int = field(default=32, metadata=_reads("vgg", size=True))
    # vgg, and vit with stem=conv: the first convolution fixed to the whitening of the
    # training set's 3x3 patches (fitted on the first training batch, never trained;
    # models/whiten.py)
    whiten: bool = field(default=False, metadata=_reads("vgg", "vit"))
    # vgg: each trained convolution starts as the identity on its first input-many
    # outputs (torch.nn.init.dirac_), the rest random, so a new block passes its input on
    dirac: bool = field(default=False, metadata=_reads("vgg"))
    # mlp, practical 1-ab: how it is written and trained. manual: hand-written forward,
    # backward and sgd (no autograd); autograd: the same tensors with requires_grad;
    # nn: torch.nn layers, the same hand-written update; optim: torch.nn + torch.optim.
    variant: str = field(default="optim", metadata=_reads("mlp", argument=False))
    # weights and biases from N(0, init_std); None: torch's
    init_std: float | None = field(default=None, metadata=_reads("mlp"))
    # vit (practical 1-e), the course's names and defaults
    embed_dim: int = field(default=32, metadata=_reads("vit", size=True))
    nb_blocks: int = field(default=2, metadata=_reads("vit", size=True))
    patch_size: int = field(default=7, metadata=_reads("vit", size=True))
    num_heads: int = field(default=4, metadata=_reads("vit", size=True))
    mlp_ratio: float = field(default=4.0, metadata=_reads("vit", size=True))
    pos_embed: str = field(default="sinusoidal", metadata=_reads("vit"))  # or "learned"
    # the class token, or "mean" of the patch tokens
    pool: str = field(default="cls", metadata=_reads("vit"))
    # explicit (the equations), fused (SDPA); auto: fused on GPUs only
    attention: str = field(default="auto", metadata=_reads("vit"))
    # extra learned tokens no pooling reads (Darcet et al., 2024)
    registers: int = field(default=0, metadata=_reads("vit", size=True))
    # patch: the course's linear patch projection; conv: 3x3 stride-2 convolutions with
    # batch norm down to the patch grid, then a 1x1 projection (Xiao et al., 2021)
    stem: str = field(default="patch", metadata=_reads("vit"))
    # stochastic depth: the last block's drop rate (linear from 0)
    drop_path: float = field(default=0.0, metadata=_reads("vit"))
    # a 3x3 depthwise convolution over the patch grid inside each MLP (LocalViT)
    local_mlp: bool = field(default=False, metadata=_reads("vit"))
    # timm:<name> models: ImageNet weights through timm, or a local weights file, and how
    # the 28x28 one-channel images meet a network made for 224x224 colour ones
    pretrained: bool = field(default=False, metadata=_reads("timm"))
    pretrained_file: str | None = field(default=None, metadata=_reads("timm"))
    # native: img_size/in_chans set; repeat: 3 channels; resize: 224
    timm_input: str = field(default="native", metadata=_reads("timm"))

    @property
    def kind(self) -> str:
        """mlp, cnn, lenet, vgg, vit or timm: which entry of MODEL_KEYS applies."""
        return "timm" if self.name.startswith("timm:") else self.name

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of this kind of model's class: the fields it reads."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if self.kind in f.metadata.get("models", ()) and f.metadata["argument"]
        }

    def validate(self) -> None:
        if self.kind != "timm":
            _one_of("model.name", self.name, MODELS)
        _require(len(self.name) > 5 or self.kind != "timm", "model.name=timm: needs a name")
        _require(self.hidden > 0, f"model.hidden must be positive, got {self.hidden}")
        _require(self.width > 0, f"model.width must be positive, got {self.width}")
        _one_of("model.variant", self.variant, MLP_VARIANTS)
        _one_of("model.activation", self.activation, ACTIVATIONS)
        _one_of("model.pos_embed", self.pos_embed, ("sinusoidal", "learned"))
        _one_of("model.pool", self.pool, ("cls", "mean"))
        _one_of("model.attention", self.attention, ATTENTION_CHOICES)
        _one_of("model.stem", self.stem, ("patch", "conv"))
        _require(
            self.stem != "conv"
            or (self.patch_size > 1 and not self.patch_size & (self.patch_size - 1)),
            f"model.stem=conv halves the image per convolution, so model.patch_size must be "
            f"a power of two (2, 4, 8, ...), got {self.patch_size}",
        )
        _require(
            not (self.kind == "vit" and self.whiten and self.stem != "conv"),
            "model.whiten=true whitens ahead of a ViT's convolutional stem: add model.stem=conv",
        )
        _require(
            0 <= self.drop_path < 1, f"model.drop_path must be in [0, 1), got {self.drop_path}"
        )
        _one_of("model.timm_input", self.timm_input, ("native", "repeat", "resize"))
        for key in ("embed_dim", "nb_blocks", "patch_size", "num_heads"):
            value = getattr(self, key)
            _require(value > 0, f"model.{key} must be positive, got {value}")
        _require(
            0 <= self.registers <= 64, f"model.registers must be in 0..64, got {self.registers}"
        )
        _require(self.mlp_ratio > 0, f"model.mlp_ratio must be positive, got {self.mlp_ratio}")
        _require(
            self.name != "vit" or self.embed_dim % self.num_heads == 0,
            f"model.embed_dim={self.embed_dim} is not divisible by "
            f"model.num_heads={self.num_heads}",
        )
        _require(self.init_std is None or self.init_std > 0, "model.init_std must be positive")
        _require(0.0 <= self.dropout < 1.0, f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.variant != "optim":
            _require(
                self.name == "mlp", f"model.variant={self.variant} exists only for model.name=mlp"
            )
            _require(
                self.activation == "tanh" or self.variant != "manual",
                "model.variant=manual has the tanh derivative written in: "
                "use model.activation=tanh",
            )
            _require(
                self.dropout == 0, f"model.variant={self.variant} has no dropout: use variant=optim"
            )


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0  # sgd, rmsprop
    nesterov: bool = False  # sgd
    weight_decay: float = 0.0
    # false: no weight decay on 1-D parameters (biases, batch norm's scales and shifts),
    # whose size sets no function's scale to be kept in check
    norm_decay: bool = True
    beta1: float = 0.9  # adam, adamw
    beta2: float = 0.999
    alpha: float = 0.99  # rmsprop smoothing
    rho: float = 0.9  # adadelta

    def validate(self) -> None:
        _one_of("optim.name", self.name, OPTIMIZERS)
        _require(self.lr > 0, f"optim.lr must be positive, got {self.lr}")
        _require(self.momentum >= 0, f"optim.momentum must be >= 0, got {self.momentum}")
        _require(
            self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}"
        )
        _require(
            not self.nesterov or self.momentum > 0, "optim.nesterov=true needs optim.momentum > 0"
        )
        for key in ("beta1", "beta2", "alpha", "rho"):
            value = getattr(self, key)
            _require(0 <= value < 1, f"optim.{key} must be in [0, 1), got {value}")


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

    def validate(self) -> None:
        _one_of("schedule.name", self.name, SCHEDULES)
        _one_of("schedule.interval", self.interval, ("epoch", "step"))
        _require(self.gamma > 0, f"schedule.gamma must be positive, got {self.gamma}")
        _require(self.step_size > 0, f"schedule.step_size must be positive, got {self.step_size}")
        _require(
            0 < self.pct_start < 1, f"schedule.pct_start must be in (0, 1), got {self.pct_start}"
        )
        _require(self.warmup_epochs >= 0, "schedule.warmup_epochs must be >= 0")
        _require(0 <= self.min_factor <= 1, "schedule.min_factor must be in [0, 1]")
        _require(self.power > 0, f"schedule.power must be positive, got {self.power}")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 1000
    seed: int = 0
    label_smoothing: float = 0.0
    loss_reduction: str = "mean"  # gradients averaged ("mean") or summed ("sum") over a batch
    # bf16 autocast: "auto" times a few training steps each way and keeps the faster
    # (tinyvision.train.precision), "bf16" always, "none" never (float32 throughout).
    amp: str = "auto"
    # NHWC activations: faster convolutions on most CPUs and GPUs, not all; "auto" times
    # them as it does amp, true or false forces them.
    channels_last: bool | str = "auto"
    compile: bool = False  # torch.compile the model
    # Evaluate (and keep, at the end) an exponential moving average of the weights with
    # this decay per step; 0 = off. Its horizon is about 1 / (1 - ema) steps.
    ema: float = 0.0
    # Lookahead: every train.lookahead_steps steps the trained weights are set back to
    # slow weights moved this fraction of the way toward them (train/lookahead.py); 0 = off
    lookahead: float = 0.0
    lookahead_steps: int = 5
    tta: bool = False  # test-time augmentation: average the logits of x and its mirror image
    # test-time shifts: also average over x moved this many pixels diagonally each way
    # (x itself weighing as much as the two moved copies); 0 = off
    tta_shift: int = 0
    # Evaluate the test split after every Nth epoch and after the last; the epochs between
    # leave the test columns of metrics.csv NaN. An epoch's test pass through six test-time
    # views costs a small ViT about a third of its training pass.
    eval_every: int = 1
    # Seconds the run may train: as many of train.epochs as fit, timed on this machine
    # before the first step (tinyvision.train.budget); 0 = train all of them.
    time_budget: float = 0.0
    # CPU threads torch trains with: 0 = timed at 1 and at all of them before training
    # (tinyvision.train.threads; on a busy machine one thread can be the faster), N forces N.
    threads: int = 0
    logger: str = "none"  # "tensorboard": event files in the run folder (pip extra [tensorboard])

    def validate(self) -> None:
        _require(self.epochs > 0, f"train.epochs must be positive, got {self.epochs}")
        _require(self.batch_size > 0, f"train.batch_size must be positive, got {self.batch_size}")
        _require(self.eval_batch_size > 0, "train.eval_batch_size must be positive")
        _require(self.eval_every > 0, f"train.eval_every must be positive, got {self.eval_every}")
        _require(
            0 <= self.seed <= SEED_MAX, f"train.seed must be in 0..{SEED_MAX}, got {self.seed}"
        )
        _require(0 <= self.label_smoothing < 1, "train.label_smoothing must be in [0, 1)")
        _require(
            0 <= self.tta_shift <= 4,
            f"train.tta_shift must be in 0..4 pixels, got {self.tta_shift}",
        )
        _require(0 <= self.ema < 1, f"train.ema must be in [0, 1) (0 = off), got {self.ema}")
        _require(
            0 <= self.lookahead < 1,
            f"train.lookahead must be in [0, 1) (0 = off), got {self.lookahead}",
        )
        _require(
            self.lookahead_steps > 0,
            f"train.lookahead_steps must be positive, got {self.lookahead_steps}",
        )
        _require(
            self.time_budget >= 0,
            f"train.time_budget is seconds (0 = off), got {self.time_budget}",
        )
        _require(
            self.threads >= 0,
            f"train.threads is a count of CPU threads (0 = chosen by timing), got {self.threads}",
        )
        _one_of("train.amp", self.amp, ("auto", "none", "bf16"))
        _require(
            isinstance(self.channels_last, bool) or self.channels_last == "auto",
            f"train.channels_last={self.channels_last} is not known; choose auto, true or false",
        )
        _one_of("train.loss_reduction", self.loss_reduction, ("mean", "sum"))
        _one_of("train.logger", self.logger, ("none", "tensorboard"))


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

    def validate(self) -> Config:
        """Each section's own checks, then the combinations that cannot train."""
        for section in SECTIONS:
            getattr(self, section).validate()
        _one_of("task", self.task, TASKS)
        d, m, o, s, t = self.data, self.model, self.optim, self.schedule, self.train
        if m.variant != "optim":
            plain = o.name == "sgd" and o.momentum == 0 and o.weight_decay == 0
            _require(
                plain and s.name == "constant",
                f"model.variant={m.variant} updates by hand with plain SGD: use optim.name=sgd "
                "with no momentum or weight decay and schedule.name=constant (or variant=optim)",
            )
            _require(
                t.label_smoothing == 0,
                f"model.variant={m.variant} computes its own loss: train.label_smoothing=0",
            )
        _require(
            not t.tta or d.name != "circles",
            "train.tta mirrors images; data.name=circles holds 2-D points",
        )
        _require(
            not t.tta_shift or d.name != "circles",
            "train.tta_shift moves images; data.name=circles holds 2-D points",
        )
        _require(
            t.lookahead == 0 or m.variant == "optim",
            f"train.lookahead pulls back what an optimizer trains: model.variant={m.variant} "
            "updates by hand (use model.variant=optim, or train.lookahead=0)",
        )
        _require(
            t.ema == 0 or m.variant == "optim",
            f"train.ema averages what an optimizer trains: model.variant={m.variant} "
            "updates by hand (use model.variant=optim, or train.ema=0)",
        )
        _require(
            t.time_budget == 0 or m.variant == "optim",
            f"train.time_budget times an optimizer's steps: model.variant={m.variant} "
            "updates by hand (set train.epochs instead, and train.time_budget=0)",
        )
        _require(
            t.time_budget == 0 or t.eval_every == 1,
            "train.time_budget sizes a run whose every epoch has its test pass: use "
            "train.eval_every=1, or train.time_budget=0 with train.epochs",
        )
        _require(
            t.time_budget == 0 or not t.compile,
            "train.time_budget times eager steps and cannot foresee torch.compile's compile "
            "time: use train.compile=false, or train.time_budget=0 with train.epochs",
        )
        for key in ("mixup", "cutmix"):
            if getattr(d, key) > 0:
                _require(
                    m.variant == "optim",
                    f"data.{key} mixes labels, which the hand-written model.variant={m.variant} "
                    "cannot learn from: use model.variant=optim",
                )
                _require(
                    d.name != "circles",
                    f"data.{key} mixes images; data.name=circles holds 2-D points",
                )
        return self

    @classmethod
    def from_dict(cls, d: Any, source: str = "config") -> Config:
        """A config from its JSON form (a run's config.json): every key and type checked."""
        cfg = cls()
        try:
            _require(isinstance(d, dict), "expected a JSON object")
            for key, value in d.items():
                _require(key in TOP_LEVEL, f"unknown key '{key}'")
                current = getattr(cfg, key)
                if dataclasses.is_dataclass(current):
                    _require(isinstance(value, dict), f"'{key}' must be an object")
                    for name, v in value.items():
                        assign(cfg, f"{key}.{name}", v)
                else:
                    assign(cfg, key, value)
            return cfg.validate()
        except UserError as e:
            raise UserError(f"{source}: {e}") from None


def _model_keys(kind: str, size_only: bool = False) -> tuple[str, ...]:
    return tuple(
        f.name
        for f in fields(ModelConfig)
        if kind in f.metadata.get("models", ()) and (f.metadata["size"] or not size_only)
    )


# The model.* keys each kind of model reads (besides model.name); any other is refused.
MODEL_KEYS = {kind: _model_keys(kind) for kind in MODEL_KINDS}
# Those that set its size: named when a model does not fit in memory.
SIZE_KEYS = {kind: _model_keys(kind, size_only=True) for kind in MODEL_KINDS}

SECTIONS = ("data", "model", "optim", "schedule", "train")
TOP_LEVEL = ("preset", "task", *SECTIONS, "overrides")


# --- values: typed (presets, config.json) and text (the command line) -----------------


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _target(cfg: Config, key: str) -> tuple[Any, str, Any]:
    """(the object holding the field, the field's name, its type) for a dotted key."""
    if key in ("task", "preset", "overrides"):
        return cfg, key, _field_types(Config)[key]
    section, _, name = key.partition(".")
    target = getattr(cfg, section, None) if name and section in SECTIONS else None
    if target is None or name not in {f.name for f in fields(target)}:
        close = [k for k in known_keys() if k.endswith("." + (name or section))]
        hint = f" (did you mean {close[0]}?)" if close else " (`tinyvision keys` lists them)"
        raise UserError(f"unknown config key '{key}'{hint}")
    return target, name, _field_types(type(target))[name]


def _optional(ftype: Any) -> tuple[bool, Any]:
    origin, args = typing.get_origin(ftype), typing.get_args(ftype)
    if (origin is typing.Union or origin is types.UnionType) and type(None) in args:
        return True, next(a for a in args if a is not type(None))
    return False, ftype


def _is_bool_or_str(ftype: Any) -> bool:
    return set(typing.get_args(ftype)) == {bool, str}


def _is_tuple_type(ftype: Any) -> bool:
    return typing.get_origin(_optional(ftype)[1]) is tuple


def check_value(key: str, value: Any, ftype: Any) -> Any:
    """The value if it has the field's type (JSON's view of it), else a one-line error."""
    optional, base = _optional(ftype)
    if value is None:
        _require(optional, f"{key}: a value is required, got null")
        return None
    kind = base.__name__ if isinstance(base, type) else "list"
    if _is_bool_or_str(base):  # true, false or a word (auto): the section checks which
        ok = isinstance(value, (bool, str))
        kind = "bool|str"
    elif base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            _require(math.isfinite(value), f"{key}: {value} is not a finite number")
            value = float(value)
    elif base is str:
        ok = isinstance(value, str)
    elif typing.get_origin(base) is tuple:
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
        kind = "list of finite numbers"
        value = tuple(float(v) for v in value) if ok else value
    elif typing.get_origin(base) is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        kind = "list of strings"
    else:  # pragma: no cover - every field has one of the types above
        raise TypeError(f"{key}: unsupported field type {ftype}")
    names = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}
    names["bool|str"] = "true, false or a word"
    _require(ok, f"{key}: expected {names.get(kind, 'a ' + kind)}, got {json.dumps(value)[:40]}")
    return value


def assign(cfg: Config, key: str, value: Any) -> None:
    """Set a dotted key to a typed value (a preset's, or one read from config.json)."""
    target, name, ftype = _target(cfg, key)
    setattr(target, name, check_value(key, value, ftype))


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
    optional, base = _optional(ftype)
    if optional and text.lower() in ("none", "null", ""):
        return None
    if typing.get_origin(base) is tuple:
        items = [t for t in text.strip("[]()").split(",") if t.strip()]
        try:
            return check_value(key, [float(t) for t in items], ftype)
        except ValueError:
            raise UserError(f"{key}={text}: expected numbers separated by commas") from None
    if base is bool or _is_bool_or_str(base):
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        if base is bool:
            raise UserError(f"{key}={text}: expected true or false")
        return text
    if base is int:
        try:
            return int(text)
        except ValueError:
            raise UserError(f"{key}={text}: expected an integer") from None
    if base is float:
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"{key}={text}: expected a number") from None
        _require(math.isfinite(value), f"{key}={text}: expected a finite number")
        return value
    return text


def known_keys() -> list[str]:
    return [f"{s}.{f.name}" for s in SECTIONS for f in fields(getattr(Config(), s))]


def apply_override(cfg: Config, key: str, text: str) -> None:
    target, name, ftype = _target(cfg, key)
    setattr(target, name, parse_value(key, text, ftype))


def parse_assignment(arg: str) -> tuple[str, str]:
    if "=" not in arg:
        raise UserError(f"'{arg}' is not KEY=VALUE (for example train.epochs=3)")
    key, _, value = arg.partition("=")
    return key.strip(), value.strip()


def apply_overrides(cfg: Config, assignments: list[str]) -> Config:
    """`key=value` texts, as typed on the command line."""
    for key, value in (parse_assignment(a) for a in assignments):
        apply_override(cfg, key, value)
    return cfg


def check_model_keys(cfg: Config, keys: list[str]) -> None:
    """Refuse model.* keys that the chosen model does not read (they would do nothing)."""
    takes = MODEL_KEYS.get(cfg.model.kind)
    if takes is None:  # an unknown model: validation says so
        return
    for key in keys:
        section, _, name = key.partition(".")
        if section == "model" and name != "name" and name not in takes:
            raise UserError(
                f"{key} does nothing for model.name={cfg.model.name}, which takes "
                + ", ".join(f"model.{k}" for k in takes)
            )


def validate(cfg: Config) -> Config:
    return cfg.validate()
