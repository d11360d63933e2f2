"""Any timm model as a tinyvision model, adapted to the data as the course does.

`model.timm_input`: native (timm's `img_size` and `in_chans` set to the data's, the
course's first choice), repeat (the grey channel repeated to RGB, the image size
kept), resize (repeated to RGB and resized to the network's own input, e.g. 224).
`model.pretrained=true` loads ImageNet weights through timm (a download, or timm's cache);
`model.pretrained_file=PATH` loads them from a local file with the same adaptation
(first convolution summed to one channel, positional embeddings resampled, head dropped).
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from tinyvision.config import ModelConfig
from tinyvision.data.sources import ENV_OFFLINE
from tinyvision.errors import UserError, first_line

CONNECT_TIMEOUT_S = 3.0  # to decide that there is no network before timm retries for a minute


class InputAdapter(nn.Module):
    """Repeat grey images to three channels and, optionally, resize them."""

    def __init__(self, model: nn.Module, size: int | None):
        super().__init__()
        self.model, self.size = model, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.size and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.model(x)


def create_timm_model(
    cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    import timm

    name = cfg.name.removeprefix("timm:")
    if not timm.is_model(name):
        raise UserError(
            f"model.name={cfg.name}: timm has no model '{name}' (see timm.list_models())"
        )
    kwargs: dict = {"num_classes": num_classes}
    if cfg.timm_input == "native":
        kwargs["in_chans"] = input_shape[0]
    if cfg.timm_input in ("native", "repeat"):
        kwargs["img_size"] = input_shape[-1]
    if cfg.pretrained_file:
        path = Path(cfg.pretrained_file).expanduser()
        if not path.is_file():
            raise UserError(f"model.pretrained_file={path}: no such file")
        kwargs |= _with_weights(load_weights_file(path, f"model.pretrained_file={path}"))
    elif cfg.pretrained:
        kwargs |= _hub_weights(timm, name)
    model = _create(timm, name, kwargs, cfg)
    for key in ("pretrained_cfg", "default_cfg"):  # timm keeps the config: not our weights
        getattr(model, key, {}).pop("state_dict", None)
    if cfg.timm_input == "native":
        return model
    size = None
    if cfg.timm_input == "resize":
        size = model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    return InputAdapter(model, size)


def _with_weights(state_dict: dict[str, torch.Tensor]) -> dict:
    """timm's kwargs to adapt and load these weights: its own path for an in-memory state
    dict (first convolution summed, positions resampled, head dropped), no file, no hub."""
    return {
        "pretrained": True,
        "pretrained_cfg_overlay": {"state_dict": state_dict, "source": None},
    }


def load_weights_file(path: Path, label: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file or of a `torch.save`d state dict.

    Never a plain unpickling: a pickle runs code when loaded, and timm's own loader is
    only safe in recent versions. `torch.load(weights_only=True)` builds tensors and
    containers only and refuses anything else.
    """
    try:
        with path.open("rb") as f:
            head = f.read(9)
    except OSError as e:
        raise UserError(f"{label}: cannot read ({e.strerror})") from None
    # safetensors: an 8-byte header length, then the JSON header
    safetensors = path.suffix == ".safetensors" or head[8:9] == b"{"
    try:
        state = _load_safetensors(path) if safetensors else _torch_load_weights(path)
    except pickle.UnpicklingError:
        raise UserError(
            f"{label}: refused: the file holds Python objects besides tensors, and loading "
            "them would run code from it; save a plain state dict (safetensors, or "
            "torch.save(model.state_dict(), PATH))"
        ) from None
    except Exception as e:  # truncated, foreign or corrupt files raise many kinds
        reason = first_line(e, limit=200, default="")
        raise UserError(f"{label}: not a weights file ({type(e).__name__}: {reason})") from None
    return _tensors(state, label)


def _load_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path, device="cpu")


def _torch_load_weights(path: Path) -> object:
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    # timm's training checkpoints keep their arguments as an argparse.Namespace: plain data
    allow = safe_globals([argparse.Namespace]) if safe_globals else nullcontext()  # torch < 2.5
    with allow, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about pickle protocols of legacy files
        return torch.load(path, map_location="cpu", weights_only=True)


def _tensors(state: object, label: str) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint, as timm finds it, with wrapper prefixes removed."""
    if isinstance(state, dict):
        for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise UserError(f"{label}: holds a {type(state).__name__}, not a state dict of tensors")
    tensors = {_strip_wrappers(str(k)): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UserError(f"{label}: holds no tensors")
    return tensors


def _strip_wrappers(key: str) -> str:
    """DataParallel's `module.` and torch.compile's `_orig_mod.` prefixes."""
    for prefix in ("_orig_mod.", "module.", "_orig_mod."):
        key = key.removeprefix(prefix)
    return key


def _hub_weights(timm, name: str) -> dict:
    """Pretrained weights from the cache when they are there; else a download by timm,
    but only after deciding in seconds that it can work (not a minute of retries)."""
    try:
        source = timm.models.get_pretrained_cfg(name)
    except RuntimeError as e:  # an unknown pretrained tag
        raise UserError(f"model.name=timm:{name}: {e}") from None
    if source is None or not (source.hf_hub_id or source.url):
        raise UserError(f"model.name=timm:{name}: timm has no pretrained weights for it")
    cached = _cached_weights(source)
    if cached is not None:
        return _with_weights(load_weights_file(cached, f"cached weights {cached}"))
    why = _why_offline(source)
    if why:
        raise UserError(
            f"cannot load pretrained weights for {name}: {why}; download them where there is "
            "a network and pass model.pretrained_file=PATH"
        )
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "15")
    return {"pretrained": True}


def _hf_repo(source) -> tuple[str, str | None] | None:
    from timm.models._hub import has_hf_hub

    if not source.hf_hub_id or not has_hf_hub():
        return None
    repo, _, revision = source.hf_hub_id.partition("@")
    return repo, revision or None


def _cached_weights(source) -> Path | None:
    """The file timm would download, if an earlier download left it in the cache."""
    hf = _hf_repo(source)
    if hf is not None:
        from huggingface_hub import try_to_load_from_cache

        names = [source.hf_hub_filename] if source.hf_hub_filename else []
        for filename in names or ["model.safetensors", "pytorch_model.bin"]:
            found = try_to_load_from_cache(hf[0], filename, revision=hf[1])
            if isinstance(found, str):
                return Path(found)
        return None
    if source.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(source.url).path).name
        return path if path.is_file() else None
    return None


def _why_offline(source) -> str | None:
    """Why a download cannot work here, decided in at most CONNECT_TIMEOUT_S seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    if os.environ.get(ENV_OFFLINE) == "1":
        return f"downloads are disabled ({ENV_OFFLINE}=1)"
    if _hf_repo(source) is not None:
        url = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    else:
        url = source.url
    if not _reachable(url):
        return f"{urlparse(url).hostname} cannot be reached (no network here?)"
    return None


def _reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether the server answers one HEAD request within `timeout`, through the configured
    proxy if any. A real request, not a bare connection: sandboxes often accept every
    connection and answer nothing. The name lookup ignores socket timeouts, so the request
    runs in a daemon thread that may be left behind."""
    answered: list[bool] = []

    def attempt() -> None:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, method="HEAD"), timeout=timeout
            ):
                answered.append(True)
        except urllib.error.HTTPError:  # an error status is still an answer
            answered.append(True)
        except (OSError, ValueError):  # URLError, timeouts, TLS failures, a bad URL
            pass

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


@contextmanager
def _quiet_hub() -> Iterator[None]:
    """No warnings from the hub client while timm downloads (they come by the page)."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _create(timm, name: str, kwargs: dict, cfg: ModelConfig) -> nn.Module:
    try:
        with _quiet_hub() if kwargs.get("pretrained") else nullcontext():
            return timm.create_model(name, **kwargs)
    except TypeError:
        if "img_size" not in kwargs:
            raise
        # convnets take no img_size: they adapt to any size by themselves (tried once)
        return _create(timm, name, {k: v for k, v in kwargs.items() if k != "img_size"}, cfg)
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        if not kwargs.get("pretrained"):
            raise
        where = cfg.pretrained_file or "timm's hub"
        reason = first_line(e, limit=200)
        raise UserError(
            f"cannot load pretrained weights for {name} from {where}: {reason}; download them "
            "where there is a network and pass model.pretrained_file=PATH"
        ) from None
