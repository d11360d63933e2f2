"""Config overrides, presets and validation: every bad value is one clear UserError."""

from __future__ import annotations

import pytest

from tinyvision.config import Config, apply_overrides, split_values, validate
from tinyvision.errors import UserError
from tinyvision.presets import all_presets, build_config


def test_overrides_are_typed():
    cfg = apply_overrides(
        Config(),
        [
            "train.epochs=3",
            "optim.lr=1e-3",
            "optim.nesterov=true",
            "data.train_subset=100",
            "data.mean=0.1,0.2,0.3",
            "data.crop=none",
        ],
    )
    assert cfg.train.epochs == 3 and cfg.optim.lr == 1e-3 and cfg.optim.nesterov is True
    assert cfg.data.train_subset == 100 and cfg.data.mean == (0.1, 0.2, 0.3)
    assert cfg.data.crop is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=3", "unknown config key 'train.epoch'"),
        ("lr=0.1", "did you mean optim.lr"),
        ("train.epochs=three", "expected an integer"),
        ("optim.lr=-1", "optim.lr must be positive"),
        ("train.batch_size=0", "train.batch_size must be positive"),
        ("optim.name=sgdd", "optim.name=sgdd is not known; choose one of sgd, adam"),
        ("model.name=resnet", "model.name=resnet is not known"),
        ("data.name=imagenet", "data.name=imagenet is not known"),
        ("optim.nesterov=maybe", "expected true or false"),
        ("train.channels_last=maybe", "train.channels_last=maybe is not known; choose auto, true"),
        ("train.epochs", "is not KEY=VALUE"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(UserError, match=message):
        build_config("mlp-fashion", [override])


def test_presets_are_valid_and_only_differences():
    presets = all_presets()
    assert {"mlp-fashion", "cnn-fashion"} <= set(presets)
    for name in presets:
        cfg = build_config(name)
        assert cfg.preset == name
    assert "train.seed" not in presets["cnn-fashion"].overrides


def test_round_trip_through_dict():
    cfg = build_config("cnn-fashion", ["data.mean=0.5", "train.epochs=2"])
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg
    validate(again)


def test_split_values_respects_brackets():
    assert split_values("a,[1,2],c") == ["a", "[1,2]", "c"]


def test_channels_last_is_auto_or_a_boolean():
    assert Config().train.channels_last == "auto"
    for text, value in (("auto", "auto"), ("true", True), ("off", False)):
        chosen = build_config("cnn-fashion", [f"train.channels_last={text}"]).train.channels_last
        assert chosen == value and type(chosen) is type(value)
    data = Config().to_dict()
    data["train"]["channels_last"] = False  # a config.json written before "auto" existed
    assert Config.from_dict(data).train.channels_last is False
    for bad in (1, None, [True]):
        data["train"]["channels_last"] = bad
        with pytest.raises(UserError, match="train.channels_last"):
            Config.from_dict(data)


def test_each_model_reads_the_fields_declared_for_it():
    """A model.* field is declared once with the models that read it: the keys a model
    accepts, its class's keyword arguments and its size keys all come from there."""
    import inspect

    from tinyvision.config import MODEL_KEYS, SIZE_KEYS, ModelConfig
    from tinyvision.models.cnn import CourseCNN, LeNet5, VGGNet
    from tinyvision.models.mlp import TwoLayerMLP
    from tinyvision.models.vit import ViT

    data_shape = {"input_shape", "num_classes", "in_chans", "img_size", "image_size"}  # data
    classes = {"mlp": TwoLayerMLP, "cnn": CourseCNN, "lenet": LeNet5, "vgg": VGGNet, "vit": ViT}
    for kind, cls in classes.items():
        arguments = ModelConfig(name=kind).arguments()
        assert set(inspect.signature(cls).parameters) - data_shape == set(arguments), kind
        assert set(arguments) <= set(MODEL_KEYS[kind]) and set(SIZE_KEYS[kind]) <= set(arguments)
    assert set(MODEL_KEYS["mlp"]) - set(ModelConfig(name="mlp").arguments()) == {"variant"}
    assert MODEL_KEYS["timm"] == ("pretrained", "pretrained_file", "timm_input")


def test_model_settings_reach_the_model_by_name():
    from tinyvision.config import ModelConfig
    from tinyvision.models import create_model

    cfg = ModelConfig(
        name="vit", embed_dim=16, nb_blocks=3, num_heads=2, registers=1, drop_path=0.2
    )
    vit = create_model(cfg, (1, 28, 28), 10)
    assert len(vit.blocks) == 3 and vit.pos_embed.shape == (1, 16 + 1 + 1, 16)
    assert vit.blocks[-1].drop_path.drop_prob == pytest.approx(0.2)
    assert vit.blocks[0].attn.num_heads == 2
    vgg = create_model(ModelConfig(name="vgg", width=8, dropout=0.5), (3, 32, 32), 10)
    assert sum(p.numel() for p in vgg.parameters()) < sum(
        p.numel() for p in create_model(ModelConfig(name="vgg"), (3, 32, 32), 10).parameters()
    )
