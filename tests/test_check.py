"""tv.check: every check passes tinyvision's references and fails the known mistakes,
each with the message meant for it; a raising piece is reported at the student's line."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tinyvision as tv
from tinyvision.check import CHECKS, PIECES, reference
from tinyvision.check.references import standardize as ref_standardize
from tinyvision.check.references import zca as ref_zca
from tinyvision.data.augment import random_crop as ref_crop
from tinyvision.models import arithmetic, vit
from tinyvision.models import mlp_manual as mm
from tinyvision.models.cnn import CourseCNN


def _copy(check: str):
    """The reference as a student's own object (the identical object is refused)."""
    ref = reference(check)
    if isinstance(ref, type):
        return type(ref.__name__, (ref,), {})
    return lambda *args: ref(*args)


@pytest.mark.parametrize("check", list(CHECKS))
def test_every_check_passes_the_reference(check):
    result = tv.check.run(check, _copy(check))
    assert result.passed, str(result)
    assert str(result).startswith("✔") and "\n" not in str(result)


def test_the_reference_object_itself_is_not_graded():
    assert tv.check.forward(mm.forward).status == "missing"


# --- wrong implementations, the mistakes the course's students make ------------------


def init_transposed(nx, nh, ny):
    return {
        "Wh": torch.randn(nx, nh) * 0.3,
        "bh": torch.randn(nh) * 0.3,
        "Wy": torch.randn(nh, ny) * 0.3,
        "by": torch.randn(ny) * 0.3,
    }


def init_zeros(nx, nh, ny):
    return {k: torch.zeros(v.shape) for k, v in mm.init_params(nx, nh, ny).items()}


def init_std_one(nx, nh, ny):
    return {k: torch.randn(v.shape) for k, v in mm.init_params(nx, nh, ny).items()}


def forward_transposed(params, X):
    htilde = X @ params["Wh"] + params["bh"]
    h = torch.tanh(htilde)
    ytilde = h @ params["Wy"] + params["by"]
    yhat = torch.softmax(ytilde, 1)
    return yhat, {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}


def forward_naive_softmax(params, X):
    htilde = X @ params["Wh"].T + params["bh"]
    h = torch.tanh(htilde)
    ytilde = h @ params["Wy"].T + params["by"]
    e = torch.exp(ytilde)
    yhat = e / e.sum(1, keepdim=True)
    return yhat, {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}


def forward_softmax_over_batch(params, X):
    yhat, outputs = mm.forward(params, X)
    yhat = torch.softmax(outputs["ytilde"], 0)
    return yhat, {**outputs, "yhat": yhat}


def loss_summed(Yhat, Y):
    return -(Y * Yhat.log()).sum(), (Yhat.argmax(1) == Y.argmax(1)).float().mean()


def loss_percent(Yhat, Y):
    loss, acc = mm.loss_accuracy(Yhat, Y)
    return loss, acc * 100


def backward_not_averaged(params, outputs, Y):
    return mm.backward(params, outputs, Y, reduction="sum")


def backward_no_bias(params, outputs, Y):
    grads = mm.backward(params, outputs, Y)
    return {"Wh": grads["Wh"], "Wy": grads["Wy"]}


def backward_transposed(params, outputs, Y):
    delta_y = (outputs["yhat"] - Y) / len(Y)
    delta_h = (delta_y @ params["Wy"]) * (1 - outputs["h"] ** 2)
    return {
        "Wy": outputs["h"].T @ delta_y,
        "by": delta_y.sum(0),
        "Wh": outputs["X"].T @ delta_h,
        "bh": delta_h.sum(0),
    }


def sgd_ascent(params, grads, eta):
    return {k: params[k] + eta * grads[k] for k in params}


def sgd_clears_grads(params, grads, eta):
    for k in params:
        params[k] -= eta * grads[k]
        grads[k].zero_()
    return params


def size_no_plus_one(size, kernel, stride=1, padding=0, ceil_mode=False):
    return (size + 2 * padding - kernel) // stride


def size_padding_once(size, kernel, stride=1, padding=0, ceil_mode=False):
    return (size + padding - kernel) // stride + 1


def size_true_division(size, kernel, stride=1, padding=0, ceil_mode=False):
    return (size + 2 * padding - kernel) / stride + 1


def rf_no_jump(layers):
    r, out = 1, []
    for k, _ in layers:
        r += k - 1
        out.append((r, 1))
    return out


def rf_jump_first(layers):
    r, j, out = 1, 1, []
    for k, s in layers:
        j *= s
        r += (k - 1) * j
        out.append((r, j))
    return out


def standardize_on_test(train_x, test_x):
    def fit(x):
        return x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True)

    (m1, s1), (m2, s2) = fit(train_x), fit(test_x)
    return (train_x - m1) / s1, (test_x - m2) / s2


def standardize_all_channels(train_x, test_x):
    mean, std = train_x.mean(), train_x.std()
    return (train_x - mean) / std, (test_x - mean) / std


def _whiten(train_x, test_x, epsilon, fit=None, rotate=True, inside=True):
    fit = train_x if fit is None else fit
    flat = fit.reshape(len(fit), -1)
    mean = flat.mean(0)
    s, u = torch.linalg.eigh((flat - mean).T @ (flat - mean) / len(flat))
    scale = (s + epsilon).rsqrt() if inside else s.rsqrt() + epsilon
    w = u @ torch.diag(scale) @ (u.T if rotate else torch.eye(len(s), dtype=u.dtype))
    return tuple(((x.reshape(len(x), -1) - mean) @ w).reshape(x.shape) for x in (train_x, test_x))


def zca_on_test(train_x, test_x, epsilon):
    return _whiten(train_x, test_x, epsilon)[0], _whiten(test_x, test_x, epsilon)[1]


def zca_pca(train_x, test_x, epsilon):
    return _whiten(train_x, test_x, epsilon, rotate=False)


def zca_epsilon_outside(train_x, test_x, epsilon):
    return _whiten(train_x, test_x, epsilon, inside=False)


def crop_same_place(x, size, generator):
    top = int(torch.randint(0, x.shape[2] - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, x.shape[3] - size + 1, (1,), generator=generator))
    return x[:, :, top : top + size, left : left + size]


def _crop_each(x, size, tops, lefts):
    return torch.stack(
        [x[i, :, t : t + size, l : l + size] for i, (t, l) in enumerate(zip(tops, lefts))]
    )


def crop_exclusive_high(x, size, generator):
    b, _, h, w = x.shape
    top = torch.randint(0, max(h - size, 1), (b,), generator=generator)
    left = torch.randint(0, max(w - size, 1), (b,), generator=generator)
    return _crop_each(x, size, top.tolist(), left.tolist())


def crop_global_rng(x, size, generator):
    b, _, h, w = x.shape
    top = torch.randint(0, h - size + 1, (b,))
    left = torch.randint(0, w - size + 1, (b,))
    return _crop_each(x, size, top.tolist(), left.tolist())


def crop_height_for_both(x, size, generator):
    b, _, h, _ = x.shape
    offsets = torch.randint(0, h - size + 1, (b, 2), generator=generator)
    return _crop_each(x, size, offsets[:, 0].tolist(), offsets[:, 1].tolist())


class CNNNoPadding(nn.Module):
    def __init__(self, in_chans=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 32, 5)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc4 = nn.LazyLinear(1000)
        self.fc5 = nn.Linear(1000, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc5(F.relu(self.fc4(x.flatten(1))))


class CNNNoCeilMode(nn.Module):
    def __init__(self, in_chans=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 32, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv3 = nn.Conv2d(64, 64, 5, padding=2)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.fc4 = nn.Linear(1024, 1000)
        self.fc5 = nn.Linear(1000, num_classes)

    def forward(self, x):
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = self.pool3(F.relu(self.conv3(x)))
        return self.fc5(F.relu(self.fc4(x.flatten(1))))


class AttentionNoScale(vit.SelfAttention):
    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        return self.proj(torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v)


class AttentionOverQueries(vit.SelfAttention):
    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        return self.proj(torch.softmax(scores, dim=-2) @ v)


class _Heads(nn.Module):
    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)

    def attend(self, q, k, v, scale):
        b, h, n, d = q.shape
        heads = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1) @ v
        return self.proj(heads.transpose(1, 2).reshape(b, n, h * d))


class HeadsWrongAxis(_Heads):
    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, self.num_heads, 3, self.head_dim).permute(3, 0, 2, 1, 4)
        return self.attend(qkv[0], qkv[1], qkv[2], self.head_dim**-0.5)


class HeadsScaledByWidth(_Heads):
    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return self.attend(qkv[0], qkv[1], qkv[2], d**-0.5)


class BlockPostNorm(vit.Block):
    def forward(self, x):
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))


class BlockResidualFromNorm(vit.Block):
    def forward(self, x):
        z = self.norm1(x)
        x = z + self.attn(z)
        z = self.norm2(x)
        return z + self.mlp(z)


class PatchesNotTransposed(vit.PatchEmbed):
    def forward(self, x):
        return self.proj(x).flatten(2)


class PatchesColumnOrder(vit.PatchEmbed):
    def forward(self, x):
        return self.proj(x).transpose(2, 3).flatten(2).transpose(1, 2)


def _pe(n, d, swap=False, halves=False):
    position = torch.arange(n, dtype=torch.float64)[:, None]
    frequency = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    sin, cos = torch.sin(position * frequency), torch.cos(position * frequency)
    if swap:
        sin, cos = cos, sin
    if halves:
        return torch.cat([sin, cos], 1)
    return torch.stack([sin, cos], 2).reshape(n, d)


def pe_swapped(sequence_length, d):
    return _pe(sequence_length, d, swap=True)


def pe_halves(sequence_length, d):
    return _pe(sequence_length, d, halves=True)


class ViTPositionBeforeClass(vit.ViT):
    def forward(self, x):
        tokens = self.patch_embed(x)
        tokens = tokens + self.pos_embed[:, : tokens.shape[1]]
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], 1)
        return self.head(self.norm(self.blocks(tokens))[:, 0])


class ViTMeanPooled(vit.ViT):
    def forward(self, x):
        tokens = self.forward_features(x)
        return self.head(tokens[:, 1:].mean(1))


class ViTClassLast(vit.ViT):
    def forward(self, x):
        tokens = self.patch_embed(x)
        tokens = torch.cat([tokens, self.cls_token.expand(len(x), -1, -1)], 1) + self.pos_embed
        return self.head(self.norm(self.blocks(tokens))[:, -1])


MUTANTS = [
    ("init_params", init_transposed, "weights transposed"),
    ("init_params", init_zeros, "symmetry"),
    ("init_params", init_std_one, "multiply torch.randn(...) by 0.3"),
    ("forward", forward_transposed, "weights transposed"),
    ("forward", forward_naive_softmax, "softmax overflow on large logits"),
    ("forward", forward_softmax_over_batch, "over the batch (dim=0)"),
    ("loss_accuracy", loss_summed, "summed over the batch"),
    ("loss_accuracy", loss_percent, "in percent"),
    ("backward", backward_not_averaged, "not divided by the batch size"),
    ("backward", backward_no_bias, "missing bias gradient"),
    ("backward", backward_transposed, "weights transposed"),
    ("sgd", sgd_ascent, "a step up the gradient"),
    ("sgd", sgd_clears_grads, "changed its input grads in place"),
    ("conv_output_size", size_no_plus_one, "the + 1 is missing"),
    ("conv_output_size", size_padding_once, "padding off by one"),
    ("conv_output_size", size_true_division, "not rounded down"),
    ("receptive_field", rf_no_jump, "the jump is ignored"),
    ("receptive_field", rf_jump_first, "multiplied by the layer's own stride"),
    ("standardize", standardize_on_test, "fitted on the test split"),
    ("standardize", standardize_all_channels, "one mean and std for all channels"),
    ("zca", zca_on_test, "fitted on the test split"),
    ("zca", zca_pca, "PCA whitening"),
    ("zca", zca_epsilon_outside, "epsilon is outside the square root"),
    ("random_crop", crop_same_place, "cropped at the same place"),
    ("random_crop", crop_exclusive_high, "the last position is never drawn"),
    ("random_crop", crop_global_rng, "draw with the generator"),
    ("random_crop", crop_height_for_both, "the lefts are drawn with the height's bound"),
    ("cnn", CNNNoPadding, "no padding"),
    ("cnn", CNNNoCeilMode, "ceil_mode=True"),
    ("attention", AttentionNoScale, "without the 1/sqrt(d) scale"),
    ("attention", AttentionOverQueries, "over the queries"),
    ("multihead_attention", HeadsWrongAxis, "heads split along the wrong axis"),
    ("multihead_attention", HeadsScaledByWidth, "1/sqrt(embed_dim)"),
    ("block", BlockPostNorm, "post-norm"),
    ("block", BlockResidualFromNorm, "adds the normalized tokens"),
    ("patch_embed", PatchesNotTransposed, "the features come before the tokens"),
    ("patch_embed", PatchesColumnOrder, "column order"),
    ("positional_embedding", pe_swapped, "sin and cos swapped"),
    ("positional_embedding", pe_halves, "side by side in halves"),
    ("vit", ViTPositionBeforeClass, "added before the class token"),
    ("vit", ViTMeanPooled, "the mean of the tokens"),
    ("vit", ViTClassLast, "the class token is put last"),
]


def test_every_check_has_two_mutants():
    counts = {check: sum(m[0] == check for m in MUTANTS) for check in CHECKS}
    assert min(counts.values()) >= 2, counts


@pytest.mark.parametrize(
    ("check", "piece", "message"), MUTANTS, ids=[f"{c}-{p.__name__}" for c, p, _ in MUTANTS]
)
def test_a_known_mistake_fails_with_its_message(check, piece, message):
    result = tv.check.run(check, piece)
    assert result.status == "failed", str(result)
    assert str(result).startswith("✘")
    assert len(result.lines) <= 2, str(result)
    assert message in str(result), str(result)


# --- a piece that raises: its type, message and the student's line -------------------


def raising_function(*args):
    return torch.zeros(2, 3) @ torch.zeros(2, 3)  # the student's line


class RaisingModule(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.w = torch.zeros(2, 3) @ torch.zeros(2, 3)  # the student's line


class Blank(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        raise NotImplementedError


def blank(*args):
    raise NotImplementedError


@pytest.mark.parametrize("check", list(CHECKS))
def test_a_raising_piece_is_reported_at_the_students_line(check):
    piece = RaisingModule if PIECES[check].is_class else raising_function
    result = tv.check.run(check, piece)
    text = str(result)
    assert result.status == "failed" and "raised RuntimeError" in text, text
    assert "mat1 and mat2 shapes cannot be multiplied" in text
    assert "test_check.py: " in text and "torch.zeros(2, 3) @ torch.zeros(2, 3)" in text
    assert "tinyvision" not in text.split("\n")[1] and "Traceback" not in text


@pytest.mark.parametrize("check", list(CHECKS))
def test_a_blank_piece_is_not_implemented_yet_and_falls_back(check, capsys):
    result = tv.check.run(check, Blank if PIECES[check].is_class else blank)
    assert result.status == "missing" and "not implemented yet" in str(result)
    assert result.use() is reference(check)
    assert "uses tinyvision's" in capsys.readouterr().out


def test_use_keeps_a_passing_piece(capsys):
    mine = _copy("forward")
    assert tv.check.forward(mine).use() is mine
    assert capsys.readouterr().out.startswith("✔ forward")


def test_an_endless_loop_is_cut_by_the_time_limit(monkeypatch):
    monkeypatch.setenv("TINYVISION_CHECK_TIME_LIMIT", "0.5")

    def forever(params, X):
        while True:
            pass

    result = tv.check.forward(forever)
    assert result.status == "failed" and "took longer than 0.5 s" in str(result)


def test_checks_leave_the_students_objects_and_random_state_alone():
    def modifies_x(params, X):
        X -= X.mean()
        return mm.forward(params, X)

    assert "changed its input X in place" in str(tv.check.forward(modifies_x))
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for check in CHECKS:
        tv.check.run(check, _copy(check))
    assert torch.equal(torch.rand(3), expected)


def test_pieces_name_the_references():
    """The table's references are the functions the notebooks' solutions mirror."""
    assert reference("forward") is mm.forward and reference("vit") is vit.ViT
    assert reference("conv_output_size") is arithmetic.conv_output_size
    assert reference("random_crop") is ref_crop and reference("cnn") is CourseCNN
    assert reference("standardize") is ref_standardize and reference("zca") is ref_zca
    blank_text = PIECES["forward"].blank()
    assert blank_text.startswith("def forward(params, X):") and "NotImplementedError" in blank_text
    compile(blank_text, "<blank>", "exec")
    for piece in PIECES.values():
        compile(piece.blank(), piece.name, "exec")


class AttentionOwnNames(nn.Module):
    """A student's names for the layers, created in the docstring's order."""

    def __init__(self, embed_dim):
        super().__init__()
        self.W_q = nn.Linear(embed_dim, embed_dim)
        self.W_k = nn.Linear(embed_dim, embed_dim)
        self.W_v = nn.Linear(embed_dim, embed_dim)
        self.W_o = nn.Linear(embed_dim, embed_dim)

    def forward(self, x):
        q, k, v = self.W_q(x), self.W_k(x), self.W_v(x)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1]), dim=-1)
        return self.W_o(weights @ v)


class AttentionNoProjection(nn.Module):
    def __init__(self, embed_dim):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(embed_dim, embed_dim) for _ in range(3))

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1]), dim=-1) @ v


def test_a_module_is_matched_by_layer_order_and_its_layers_are_named_when_they_differ():
    assert tv.check.attention(AttentionOwnNames).passed
    result = tv.check.attention(AttentionNoProjection)
    assert result.status == "failed"
    assert "it has 6 parameter tensors, expected 8" in str(result)
    assert "not those of the docstring" in str(result)


class CNNFunctionalPooling(nn.Module):
    """Right, with pooling and activations from torch.nn.functional (no modules to watch)."""

    def __init__(self, in_chans=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.conv3 = nn.Conv2d(64, 64, 5, padding=2)
        self.fc4 = nn.Linear(1024, 1000)
        self.fc5 = nn.Linear(1000, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2, ceil_mode=True)
        return self.fc5(F.relu(self.fc4(x.flatten(1))))


def test_a_cnn_pooling_with_functions_passes():
    assert tv.check.cnn(CNNFunctionalPooling).passed


# --- right answers written differently: they pass ---------------------------------------


def sgd_in_place(params, grads, eta):
    for name in params:
        params[name] -= eta * grads[name]


def loss_as_floats(Yhat, Y):
    loss, accuracy = mm.loss_accuracy(Yhat, Y)
    return loss.item(), accuracy.item()


def standardize_sample_std(train_x, test_x):
    mean = train_x.mean((0, 2, 3), keepdim=True)
    std = train_x.std((0, 2, 3), keepdim=True, unbiased=True)
    return (train_x - mean) / std, (test_x - mean) / std


def zca_torch_cov(train_x, test_x, epsilon):
    flat = train_x.reshape(len(train_x), -1)
    s, u = torch.linalg.eigh(torch.cov(flat.T))  # divided by N - 1
    w = u @ torch.diag(1 / torch.sqrt(s + epsilon)) @ u.T
    mean = flat.mean(0)
    return tuple(((x.reshape(len(x), -1) - mean) @ w).reshape(x.shape) for x in (train_x, test_x))


def pe_numpy(sequence_length, d):
    import numpy as np

    table = np.zeros((sequence_length, d))
    for i in range(sequence_length):
        for j in range(0, d, 2):
            table[i, j] = np.sin(i / 10000 ** (j / d))
            table[i, j + 1] = np.cos(i / 10000 ** (j / d))
    return table


class PatchesUnfoldLinear(nn.Module):
    def __init__(self, in_chans, patch_size, embed_dim):
        super().__init__()
        self.patch_size = patch_size
        self.linear = nn.Linear(in_chans * patch_size * patch_size, embed_dim)

    def forward(self, x):
        patches = F.unfold(x, self.patch_size, stride=self.patch_size)  # (B, C*p*p, N)
        return self.linear(patches.transpose(1, 2))


class ViTLearnedPositions(vit.ViT):
    """Its own layers as tinyvision's, but a learned positional embedding (a parameter)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs, pos_embed="learned")


@pytest.mark.parametrize(
    ("check", "piece"),
    [
        ("sgd", sgd_in_place),
        ("loss_accuracy", loss_as_floats),
        ("standardize", standardize_sample_std),
        ("zca", zca_torch_cov),
        ("positional_embedding", pe_numpy),
        ("patch_embed", PatchesUnfoldLinear),
        ("vit", ViTLearnedPositions),
    ],
)
def test_a_right_answer_written_differently_passes(check, piece):
    result = tv.check.run(check, piece)
    assert result.passed, str(result)
