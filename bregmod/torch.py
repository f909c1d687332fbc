"""PyTorch interoperability: trained torch models in, bregmod networks out, and back.

``from_torch(module, input_shape)`` reads an ``nn.Sequential`` (nested ones too) of affine maps
and admissible activations into a bregmod `Sequential` with the same forward map;
``to_torch(network)`` writes a bregmod network as an ``nn.Sequential``. This is the only module
of bregmod that imports torch; import it explicitly (``import bregmod.torch``) or call
``bregmod.from_torch`` / ``bregmod.to_torch``, which load it on first use.

How torch modules are read (each layer of the result is x ↦ σ(A x + β) with σ = prox_Ψ):

| torch | bregmod |
|---|---|
| ``Linear`` | the affine map of a `Dense` layer (its input must be a vector) |
| ``Conv2d`` | the affine map of a `Conv2d` layer (zero padding; dilation and groups¹) |
| ``AvgPool2d`` | a `Conv2d` with the kernel 1/(k_h k_w) on each channel |
| ``BatchNorm1d/2d`` (eval) | y = s ⊙ (x − μ) + β, s = γ/√(var + ε), folded² |
| ``ZeroPad2d`` | the padding of the ``Conv2d`` right after it |
| ``Dropout`` (eval), ``Identity`` | nothing (the identity) |
| ``Flatten``, ``Unflatten`` | the layers' ``in_shape``/``out_shape`` (C order, as torch) |
| ``ReLU``, ``Tanh``, ``Sigmoid``, ``Softsign`` | `ReLU`, `Tanh`, `Sigmoid`, `Softsign` |
| ``LeakyReLU(a)``, ``PReLU`` (one slope) | `LeakyReLU` (0 < a ≤ 1; a = 0 is `ReLU`) |
| ``Hardtanh``, ``ReLU6`` | `Clip` (lo, hi) |
| ``Hardsigmoid`` | `Clip` (0, 1) of x/6 + 1/2 |
| ``Softshrink(λ)`` | `SoftThreshold` (λ) |
| ``ELU(α)`` | `ELU` (0 < α ≤ 1) |
| ``CELU(α)`` | α · ELU₁(x/α) |
| ``Softplus(β)`` | (1/β) · Softplus(β x)³ |
| ``LogSigmoid`` | −Softplus(−x) |
| ``Softmax`` over the features | `Softmax` (vector states only) |
| `bregmod.torch.Residual` | `bregmod.network.Residual` |

¹ Dilation is read as a kernel with zeros between its taps, groups as a block-diagonal kernel;
both are exact. ² Into the affine map before it, or into the one after it where that is exact
(a ``Linear``, or a ``Conv2d`` without padding). ³ torch returns x where β x > threshold, at
most e^{−threshold}/β from (1/β) log(1 + e^{βx}) (2·10⁻⁹ for the default threshold 20);
thresholds below 20 are refused (the jump there makes the map discontinuous).

Scalings of an activation's input (β in ``Softplus(β)``) fold into the affine map before it,
scalings of its output into the affine map after it. An affine map followed by no activation
is folded into the next affine map (``Linear`` after anything, ``Conv2d`` after a dense map,
a per-channel scaling before an unpadded ``Conv2d``); where folding would densify a convolution
it becomes a layer with the `Identity` activation instead, which is exact as well.
Everything else is refused with a `ConversionError` that names the module, its position
(``"features.3"``) and the reason (``"SiLU is not monotone, so it is no proximal map"``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

import bregmod.activations as act
from bregmod.errors import ConversionError, ShapeError
from bregmod.network import Conv2d, Dense, Network, Sequential
from bregmod.network import Residual as ResidualLayer
from bregmod.operators import Conv2dOperator

__all__ = ["Residual", "from_torch", "to_torch"]

Shape = tuple[int, ...]

#: Largest dense matrix (entries) that folding an affine map into the next one may create.
FOLD_LIMIT = 2**22
#: Smallest Softplus threshold read: torch's Softplus then jumps by at most e^{−20}/β there.
SOFTPLUS_THRESHOLD = 20.0


class Residual(nn.Module):
    """bregmod's residual layer x ↦ x + V σ(W x + b) as a torch module.

    Usable inside any torch model; `from_torch` reads it as `bregmod.network.Residual` and
    `to_torch` writes that layer as this module.

    Parameters
    ----------
    features : int
        n, the size of x.
    width : int
        m, the number of hidden units (rows of W).
    activation : nn.Module, optional
        σ, one of the activations `from_torch` reads (``nn.Identity()`` by default).
    tied : bool, optional
        True (default): V = Wᵀ, the case of the paper's convexity certificate; False: a
        separate V, the weight of ``self.output``.
    bias : bool, optional
        Whether W x + b has a bias b.
    dtype : torch.dtype, optional
        dtype of the parameters.

    Attributes
    ----------
    linear : nn.Linear
        W (``linear.weight``, shape (m, n)) and b.
    output : nn.Linear or None
        V (``output.weight``, shape (n, m)) when not tied.
    """

    def __init__(
        self,
        features: int,
        width: int,
        activation: nn.Module | None = None,
        tied: bool = True,
        bias: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(features, width, bias=bias, dtype=dtype)
        self.activation = nn.Identity() if activation is None else activation
        self.output = None if tied else nn.Linear(width, features, bias=False, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self.linear(x))
        return x + (hidden @ self.linear.weight if self.output is None else self.output(hidden))


class _Function(nn.Module):
    """An entrywise activation that torch has no module for (written by `to_torch`)."""

    _FUNCTIONS = {
        "Arctan": lambda x: (2 / math.pi) * torch.atan(x),
        "ISRU": lambda x: x * torch.rsqrt(1 + x * x),
        "Asinh": torch.asinh,
    }

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._FUNCTIONS[self.name](x)

    def extra_repr(self) -> str:
        return self.name


# --------------------------------------------------------------------------- reading tensors
def _array(tensor, what: str, where: str) -> np.ndarray:
    """A parameter or buffer as a float64 array; refuses what cannot be read exactly."""
    if not isinstance(tensor, torch.Tensor):
        return np.asarray(tensor, dtype=np.float64)
    if tensor.device.type == "meta":
        raise ConversionError(f"{where}: {what} is on the meta device and holds no values")
    if not tensor.is_floating_point():
        raise ConversionError(
            f"{where}: {what} has dtype {tensor.dtype}; from_torch reads real floating-point "
            "parameters (float16, bfloat16, float32, float64)"
        )
    return tensor.detach().to("cpu", torch.float64).numpy().copy()


def _label(name: str, module: nn.Module) -> str:
    """How messages name a module: its type and position, e.g. ``"Conv2d at features.3"``."""
    return f"{type(module).__name__} at {name}"


def _refuse(name: str, module: nn.Module, why: str) -> ConversionError:
    return ConversionError(f"{_label(name, module)}: {why}")


# --------------------------------------------------------------------------- affine pieces
class _Piece:
    """An affine map x ↦ A x + β not yet closed by an activation: a dense A or a convolution.

    ``bias`` is flat (the size of the output); for a convolution it is constant per channel.
    ``diagonal`` marks a per-channel scaling x ↦ s ⊙ x + t written as a 1×1 convolution.
    """

    def __init__(self, in_shape: Shape, bias: np.ndarray, matrix=None, conv=None, diagonal=False):
        self.in_shape = in_shape
        self.bias = bias
        self.matrix = matrix
        self.conv: Conv2dOperator | None = conv
        self.diagonal = diagonal

    @classmethod
    def scaling(cls, shape: Shape, scale: np.ndarray, shift: np.ndarray) -> _Piece:
        """x ↦ s ⊙ x + t with s, t given per channel (axis 0 of ``shape``)."""
        if len(shape) == 3:
            kernel = np.zeros((shape[0], shape[0], 1, 1))
            kernel[np.arange(shape[0]), np.arange(shape[0]), 0, 0] = scale
            bias = np.repeat(shift, shape[1] * shape[2])
            return cls(shape, bias, conv=Conv2dOperator(kernel, shape), diagonal=True)
        per = int(np.prod(shape[1:], dtype=int))
        return cls(shape, np.repeat(shift, per), matrix=np.diag(np.repeat(scale, per)))

    def channel_bias(self) -> np.ndarray:
        return self.bias.reshape(self.conv.out_shape[0], -1)[:, 0]

    def scale_output(self, scale: np.ndarray, shift: np.ndarray) -> bool:
        """Compose with y ↦ s ⊙ y + t (flat s, t); False if a convolution cannot absorb it."""
        if self.conv is None:
            self.matrix = scale[:, None] * self.matrix
        else:
            per_channel = scale.reshape(self.conv.out_shape[0], -1)
            shift_channel = shift.reshape(per_channel.shape)
            if np.ptp(per_channel, axis=1).any() or np.ptp(shift_channel, axis=1).any():
                return False
            kernel = self.conv.kernel * per_channel[:, :1, None, None]
            self.conv = _conv_like(self.conv, kernel)
        self.bias = scale * self.bias + shift
        return True


def _conv_like(conv: Conv2dOperator, kernel: np.ndarray) -> Conv2dOperator:
    top, bottom, left, right = conv.padding
    padding = (top, left) if (top, left) == (bottom, right) else "same"
    return Conv2dOperator(kernel, conv.in_shape, stride=conv.stride, padding=padding)


def _compose(first: _Piece, second: _Piece) -> _Piece | None:
    """second ∘ first as one piece, or None where that is not exact and cheap."""
    if second.conv is None:  # a dense map after anything: W₂ A₁ = (A₁ᵀ W₂ᵀ)ᵀ
        W2 = second.matrix
        if first.conv is None:
            matrix = W2 @ first.matrix
        elif W2.shape[0] * first.conv.shape[1] <= FOLD_LIMIT:
            matrix = first.conv.apply_adjoint(W2)
        else:
            return None
        return _Piece(first.in_shape, W2 @ first.bias + second.bias, matrix=matrix)
    conv = second.conv
    if first.conv is None:  # a convolution after a dense map: C A₁, column by column
        if conv.shape[0] * first.matrix.shape[1] > FOLD_LIMIT:
            return None
        matrix = conv.apply(first.matrix.T).T
        return _Piece(first.in_shape, conv.apply(first.bias) + second.bias, matrix=matrix)
    shift = first.channel_bias()
    if first.diagonal and (not shift.any() or not any(conv.padding)):
        scale = np.diagonal(first.conv.kernel[:, :, 0, 0])
        kernel = conv.kernel * scale[None, :, None, None]
        channel_bias = second.channel_bias() + np.einsum("oipq,i->o", conv.kernel, shift)
        per = conv.out_shape[1] * conv.out_shape[2]
        return _Piece(first.in_shape, np.repeat(channel_bias, per), conv=_conv_like(conv, kernel))
    return None


def _linear(name: str, module: nn.Linear, shape: Shape) -> _Piece:
    if len(shape) != 1:
        raise _refuse(
            name,
            module,
            f"nn.Linear acts on the last axis of the state of shape {shape}; "
            "bregmod's Dense reads vectors: put an nn.Flatten() before it",
        )
    if shape[0] != module.in_features:
        raise ShapeError(
            f"Linear at {name}: expects {module.in_features} input features, the state has "
            f"shape {shape}"
        )
    W = _array(module.weight, "weight", _label(name, module))
    b = (
        np.zeros(W.shape[0])
        if module.bias is None
        else _array(module.bias, "bias", _label(name, module))
    )
    return _Piece(shape, b, matrix=W)


def _padding(name: str, module: nn.Conv2d, pad, kernel_shape, stride):
    """Conv2dOperator's padding for a zero padding (left, right, top, bottom) before ``module``."""
    left, right, top, bottom = pad
    if module.padding not in ((0, 0), "valid"):
        raise _refuse(name, module, "an nn.ZeroPad2d before a convolution that pads as well")
    kh, kw = kernel_shape
    same = (top, left) == ((kh - 1) // 2, (kw - 1) // 2) and (bottom, right) == (
        kh - 1 - top,
        kw - 1 - left,
    )
    if (top, left) == (bottom, right):
        return top, left
    if same and tuple(stride) == (1, 1):
        return "same"
    raise _refuse(
        name,
        module,
        f"the zero padding {pad} before it is uneven and not the 'same' padding "
        "of its kernel, which bregmod's Conv2d does not write",
    )


def _conv(name: str, module: nn.Conv2d, shape: Shape, pad=None) -> _Piece:
    if len(shape) != 3:
        raise _refuse(name, module, f"nn.Conv2d needs a (C, H, W) state, got shape {shape}")
    if module.padding_mode != "zeros":
        raise _refuse(
            name,
            module,
            f"padding_mode={module.padding_mode!r} is not the zero padding of "
            "bregmod's Conv2d (use padding_mode='zeros')",
        )
    if shape[0] != module.in_channels:
        raise ShapeError(
            f"Conv2d at {name}: expects {module.in_channels} input channels, the state has "
            f"shape {shape}"
        )
    weight = _array(module.weight, "weight", _label(name, module))
    c_out, c_group, kh, kw = weight.shape
    groups = module.groups
    kernel = np.zeros((c_out, c_group * groups, kh, kw))
    out_group = c_out // groups
    for g in range(groups):
        kernel[g * out_group : (g + 1) * out_group, g * c_group : (g + 1) * c_group] = weight[
            g * out_group : (g + 1) * out_group
        ]
    dh, dw = module.dilation
    if (dh, dw) != (1, 1):
        dilated = np.zeros((c_out, kernel.shape[1], (kh - 1) * dh + 1, (kw - 1) * dw + 1))
        dilated[:, :, ::dh, ::dw] = kernel
        kernel = dilated
    padding = 0 if module.padding == "valid" else module.padding
    if pad is not None:
        padding = _padding(name, module, pad, kernel.shape[2:], module.stride)
    try:
        conv = Conv2dOperator(kernel, shape, stride=module.stride, padding=padding)
    except ShapeError as exc:
        raise ShapeError(f"Conv2d at {name}: {exc}") from None
    b = (
        np.zeros(c_out)
        if module.bias is None
        else _array(module.bias, "bias", _label(name, module))
    )
    return _Piece(shape, np.repeat(b, conv.out_shape[1] * conv.out_shape[2]), conv=conv)


def _avg_pool(name: str, module: nn.AvgPool2d, shape: Shape) -> _Piece:
    if len(shape) != 3:
        raise _refuse(name, module, f"nn.AvgPool2d needs a (C, H, W) state, got shape {shape}")
    kh, kw = (
        (module.kernel_size,) * 2 if isinstance(module.kernel_size, int) else module.kernel_size
    )
    padding = module.padding
    if module.ceil_mode:
        raise _refuse(name, module, "ceil_mode=True averages over partial windows")
    if any(np.atleast_1d(padding)) and not module.count_include_pad:
        raise _refuse(
            name,
            module,
            "count_include_pad=False divides border windows by their own size, "
            "which is no convolution",
        )
    divisor = module.divisor_override or kh * kw
    C = shape[0]
    kernel = np.zeros((C, C, kh, kw))
    kernel[np.arange(C), np.arange(C)] = 1.0 / divisor
    stride = module.stride if module.stride is not None else (kh, kw)
    conv = Conv2dOperator(kernel, shape, stride=stride, padding=padding)
    return _Piece(shape, np.zeros(conv.shape[0]), conv=conv)


def _batch_norm(name: str, module: nn.modules.batchnorm._BatchNorm, shape: Shape):
    """(s, t) per channel of y = s ⊙ x + t, the eval-mode batch norm."""
    if module.training:
        raise _refuse(
            name,
            module,
            "in training mode it normalises with the batch's own statistics; "
            "call model.eval() first",
        )
    if module.running_mean is None:
        raise _refuse(
            name,
            module,
            "track_running_stats=False: it normalises with the batch's own "
            "statistics even in eval mode, which is no fixed affine map",
        )
    dims = (3,) if isinstance(module, nn.BatchNorm2d) else (1, 2)
    if len(shape) not in dims or shape[0] != module.num_features:
        raise ShapeError(
            f"{type(module).__name__} at {name}: cannot act on a state of shape {shape}"
        )
    mean = _array(module.running_mean, "running_mean", _label(name, module))
    var = _array(module.running_var, "running_var", _label(name, module))
    scale = 1.0 / np.sqrt(var + module.eps)
    if module.affine:
        scale = scale * _array(module.weight, "weight", _label(name, module))
        return scale, _array(module.bias, "bias", _label(name, module)) - mean * scale
    return scale, -mean * scale


# --------------------------------------------------------------------------- activations
_NOT_MONOTONE = (nn.SiLU, nn.GELU, nn.Mish, nn.Hardswish, nn.Tanhshrink)
_DISCONTINUOUS = (nn.Hardshrink, nn.Threshold)
_NOT_AFFINE = {
    (
        nn.MaxPool1d,
        nn.MaxPool2d,
        nn.MaxPool3d,
        nn.AdaptiveMaxPool1d,
        nn.AdaptiveMaxPool2d,
        nn.AdaptiveMaxPool3d,
        nn.MaxUnpool2d,
        nn.LPPool2d,
    ): "max (or power) pooling combines "
    "several inputs nonlinearly: it is no affine map and no entrywise proximal map",
    (
        nn.MultiheadAttention,
        nn.Transformer,
        nn.TransformerEncoder,
        nn.TransformerDecoder,
        nn.TransformerEncoderLayer,
        nn.TransformerDecoderLayer,
    ): "attention multiplies two "
    "functions of its input (queries and keys): it is no affine map followed by a proximal map",
    (
        nn.LayerNorm,
        nn.GroupNorm,
        nn.InstanceNorm1d,
        nn.InstanceNorm2d,
        nn.LocalResponseNorm,
        nn.RMSNorm,
    ): "it normalises by statistics of its own input, so it is not affine",
    (nn.RNN, nn.LSTM, nn.GRU): "a recurrent layer is not a feed-forward sequence of affine "
    "maps and activations",
    (
        nn.Conv1d,
        nn.Conv3d,
        nn.ConvTranspose1d,
        nn.ConvTranspose2d,
        nn.ConvTranspose3d,
    ): "bregmod reads 2-D convolutions only (nn.Conv2d)",
}
_DROPOUT = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


def _activation(name: str, module: nn.Module, shape: Shape):
    """(σ, a, c, d) with module(x) = d · σ(a x + c), or None if ``module`` is no activation."""

    def scalar(value) -> float:
        return float(value.item()) if isinstance(value, torch.Tensor) else float(value)

    if isinstance(module, nn.ReLU):
        return act.ReLU(), 1.0, 0.0, 1.0
    if isinstance(module, (nn.LeakyReLU, nn.PReLU)):
        if isinstance(module, nn.PReLU):
            if module.num_parameters != 1:
                raise _refuse(
                    name,
                    module,
                    "one slope per channel; bregmod's LeakyReLU has "
                    "a single slope (use num_parameters=1)",
                )
            slope = float(_array(module.weight, "weight", _label(name, module))[0])
        else:
            slope = float(module.negative_slope)
        if slope == 0:
            return act.ReLU(), 1.0, 0.0, 1.0
        if slope < 0:
            raise _refuse(
                name,
                module,
                f"slope {slope} < 0 makes it decreasing for x < 0, so "
                "it is no proximal map (proximal maps are nondecreasing)",
            )
        if slope > 1:
            raise _refuse(
                name,
                module,
                f"slope {slope} > 1 makes it expansive for x < 0, so "
                "it is no proximal map (proximal maps are 1-Lipschitz)",
            )
        return act.LeakyReLU(slope), 1.0, 0.0, 1.0
    if isinstance(module, nn.Hardtanh):
        return act.Clip(module.min_val, module.max_val), 1.0, 0.0, 1.0
    if isinstance(module, nn.Hardsigmoid):
        return act.Clip(0.0, 1.0), 1.0 / 6.0, 0.5, 1.0
    if isinstance(module, nn.Softshrink):
        return act.SoftThreshold(module.lambd), 1.0, 0.0, 1.0
    if isinstance(module, (nn.Tanh, nn.Sigmoid, nn.Softsign)):
        return getattr(act, type(module).__name__)(), 1.0, 0.0, 1.0
    if isinstance(module, nn.ELU):
        if module.alpha > 1:
            raise _refuse(
                name,
                module,
                f"alpha = {module.alpha} > 1 makes its slope alpha at "
                "0⁻ exceed 1 (expansive), so it is no proximal map",
            )
        if module.alpha <= 0:
            raise _refuse(name, module, f"alpha = {module.alpha} ≤ 0 makes it no proximal map")
        return act.ELU(module.alpha), 1.0, 0.0, 1.0
    if isinstance(module, nn.CELU):  # α ELU₁(x/α)
        return act.ELU(1.0), 1.0 / module.alpha, 0.0, module.alpha
    if isinstance(module, nn.Softplus):
        beta = scalar(module.beta)
        if module.threshold < SOFTPLUS_THRESHOLD:
            jump = math.log1p(math.exp(-module.threshold)) / beta
            raise _refuse(
                name,
                module,
                f"torch switches to the identity where β x > "
                f"threshold = {module.threshold}, a jump of {jump:.2g}: that function "
                f"is discontinuous, so it is no proximal map (use threshold ≥ "
                f"{SOFTPLUS_THRESHOLD:g})",
            )
        return act.Softplus(), beta, 0.0, 1.0 / beta
    if isinstance(module, nn.LogSigmoid):  # −softplus(−x)
        return act.Softplus(), -1.0, 0.0, -1.0
    if isinstance(module, nn.Softmax):
        dim = 1 if module.dim is None else module.dim
        if len(shape) != 1 or dim not in (1, -1):
            raise _refuse(
                name,
                module,
                f"softmax over dim {module.dim} of a state of shape "
                f"{shape}; bregmod's Softmax acts on the whole feature vector (use a "
                "vector state and dim=-1)",
            )
        return act.Softmax(), 1.0, 0.0, 1.0
    if isinstance(module, _Function):
        return getattr(act, module.name)(), 1.0, 0.0, 1.0
    if isinstance(module, _NOT_MONOTONE):
        raise _refuse(
            name,
            module,
            f"{type(module).__name__} is not monotone, so it is no "
            "proximal map (proximal maps are nondecreasing and 1-Lipschitz)",
        )
    if isinstance(module, _DISCONTINUOUS):
        raise _refuse(
            name,
            module,
            f"{type(module).__name__} is discontinuous, so it is no "
            "proximal map (proximal maps are continuous)",
        )
    if isinstance(module, nn.SELU):
        raise _refuse(
            name,
            module,
            "SELU has slope 1.0507 > 1 for x > 0: it is expansive, so "
            "it is no proximal map (proximal maps are 1-Lipschitz)",
        )
    return None


# --------------------------------------------------------------------------- the importer
def _leaves(module: nn.Module, prefix: str) -> Iterator[tuple[str, nn.Module]]:
    """(position, module) of the modules of nested nn.Sequential, in order."""
    if isinstance(module, nn.Sequential):
        for child_name, child in module.named_children():
            yield from _leaves(child, f"{prefix}.{child_name}" if prefix else child_name)
    else:
        yield prefix or "(root)", module


class _Importer:
    """Walks the modules, keeping the affine map that no activation has closed yet."""

    def __init__(self, input_shape: Shape) -> None:
        self.input_shape = input_shape
        self.shape = input_shape
        self.pending: _Piece | None = None
        # closed layers: [piece or ResidualLayer, activation, out_shape, position]
        self.layers: list[list] = []
        # an nn.ZeroPad2d waiting for its convolution: (position, module)
        self.zero_pad: tuple[str, nn.ZeroPad2d] | None = None

    def close(self, activation: act.Activation, position: str) -> None:
        piece = self.pending or self._identity()
        self.layers.append([piece, activation, self.shape, position])
        self.pending = None

    def _identity(self) -> _Piece:
        C = self.shape[0]
        return _Piece.scaling(self.shape, np.ones(C), np.zeros(C))

    def add(self, piece: _Piece, position: str) -> None:
        if self.pending is not None:
            folded = _compose(self.pending, piece)
            if folded is None:
                self.close(act.Identity(), position)
            else:
                piece = folded
        self.pending = piece

    def scale(self, scale: np.ndarray, shift: np.ndarray, position: str) -> None:
        """Compose with y ↦ s ⊙ y + t, s and t per channel (axis 0 of the state)."""
        per = int(np.prod(self.shape[1:], dtype=int))
        if self.pending is None or not self.pending.scale_output(
            np.repeat(scale, per), np.repeat(shift, per)
        ):
            self.add(_Piece.scaling(self.shape, scale, shift), position)

    def reshape(self, shape: Shape) -> None:
        self.shape = shape
        if self.pending is None and self.layers:
            self.layers[-1][2] = shape

    def _check_no_zero_pad(self) -> None:
        if self.zero_pad is not None:
            raise _refuse(*self.zero_pad, "zero padding is read only right before an nn.Conv2d")

    def visit(self, name: str, module: nn.Module) -> None:
        if isinstance(module, nn.ZeroPad2d):
            self._check_no_zero_pad()
            if len(self.shape) != 3 or min(module.padding) < 0:
                raise _refuse(
                    name,
                    module,
                    f"pads a state of shape {self.shape} by "
                    f"{module.padding}; read: a (C, H, W) state, padding ≥ 0",
                )
            self.zero_pad = (name, module)
            return
        if isinstance(module, nn.Conv2d) and self.zero_pad is not None:
            piece = _conv(name, module, self.shape, pad=self.zero_pad[1].padding)
            self.zero_pad = None
            self.add(piece, name)
            self.shape = piece.conv.out_shape
            return
        self._check_no_zero_pad()
        if isinstance(module, nn.Linear):
            self.add(_linear(name, module, self.shape), name)
            self.shape = (module.out_features,)
        elif isinstance(module, (nn.Conv2d, nn.AvgPool2d)):
            read = _conv if isinstance(module, nn.Conv2d) else _avg_pool
            piece = read(name, module, self.shape)
            self.add(piece, name)
            self.shape = piece.conv.out_shape
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            self.scale(*_batch_norm(name, module, self.shape), name)
        elif isinstance(module, _DROPOUT):
            if module.training and module.p > 0:
                raise _refuse(
                    name,
                    module,
                    "in training mode it zeroes entries at random; call model.eval() first",
                )
        elif isinstance(module, nn.Identity):
            pass
        elif isinstance(module, (nn.Flatten, nn.Unflatten)):
            if (module.start_dim if isinstance(module, nn.Flatten) else module.dim) == 0:
                raise _refuse(name, module, "it reshapes the batch axis (dim 0)")
            meta = torch.empty((1, *self.shape), device="meta")
            self.reshape(tuple(module(meta).shape[1:]))
        elif isinstance(module, Residual):
            self._residual(name, module)
        else:
            found = _activation(name, module, self.shape)
            if found is None:
                raise self._unsupported(name, module)
            activation, a, c, d = found
            if a != 1 or c != 0:
                self.scale(np.full(self.shape[0], a), np.full(self.shape[0], c), name)
            self.close(activation, name)
            if d != 1:
                self.scale(np.full(self.shape[0], d), np.zeros(self.shape[0]), name)

    def _residual(self, name: str, module: Residual) -> None:
        n = module.linear.in_features
        if self.shape != (n,):
            raise ShapeError(
                f"Residual at {name}: expects a vector of {n} features, the state "
                f"has shape {self.shape}"
            )
        if isinstance(module.activation, nn.Identity):
            found = (act.Identity(), 1.0, 0.0, 1.0)
        else:
            found = _activation(
                f"{name}.activation", module.activation, (module.linear.out_features,)
            )
        if found is None:
            raise self._unsupported(f"{name}.activation", module.activation)
        activation, a, c, d = found
        W = _array(module.linear.weight, "linear.weight", _label(name, module))
        b = (
            np.zeros(W.shape[0])
            if module.linear.bias is None
            else _array(module.linear.bias, "linear.bias", _label(name, module))
        )
        V = (
            W.T
            if module.output is None
            else _array(module.output.weight, "output.weight", _label(name, module))
        )
        if (a, c, d) != (1.0, 0.0, 1.0):  # x + V d σ(a W x + a b + c)
            W, b, V = a * W, a * b + c, d * V
        layer = ResidualLayer(
            W, b, activation, V=None if module.output is None and (a, d) == (1.0, 1.0) else V
        )
        if self.pending is not None:
            self.close(act.Identity(), name)
        self.layers.append([layer, None, self.shape, name])

    @staticmethod
    def _unsupported(name: str, module: nn.Module) -> ConversionError:
        for types, why in _NOT_AFFINE.items():
            if isinstance(module, types):
                return _refuse(name, module, why)
        if any(True for _ in module.children()):
            return _refuse(
                name,
                module,
                "a custom container: its forward is Python code that "
                "from_torch cannot read (containers read: nn.Sequential and "
                "bregmod.torch.Residual)",
            )
        return _refuse(
            name,
            module,
            "from_torch does not read this module (see the table in "
            "bregmod.torch for what it reads)",
        )

    def network(self) -> Sequential:
        self._check_no_zero_pad()
        if self.pending is not None:
            self.close(act.Identity(), "end")
        if not self.layers:
            raise ConversionError("the model has no affine layer (Linear, Conv2d, Residual)")
        built: list[Network] = []
        previous = self.input_shape
        for piece, activation, out_shape, position in self.layers:
            if isinstance(piece, ResidualLayer):
                built.append(piece)
            elif piece.conv is None:
                built.append(
                    Dense(
                        piece.matrix, piece.bias, activation, in_shape=previous, out_shape=out_shape
                    )
                )
            else:
                conv = piece.conv
                if previous != conv.in_shape:
                    raise ConversionError(
                        f"at {position}: the convolution reads a (C, H, W) = {conv.in_shape} "
                        f"state, but the state before it has shape {previous}; a reshape before "
                        "the first layer is not read: pass input_shape=(C, H, W) and drop the "
                        "leading nn.Unflatten"
                    )
                top, bottom, left, right = conv.padding
                padding = (top, left) if (top, left) == (bottom, right) else "same"
                built.append(
                    Conv2d(
                        conv.kernel,
                        piece.channel_bias(),
                        activation,
                        in_shape=conv.in_shape,
                        stride=conv.stride,
                        padding=padding,
                        out_shape=out_shape,
                    )
                )
            previous = out_shape
        return Sequential(*built)


def from_torch(
    module: nn.Module,
    input_shape: Sequence[int],
    state_dict: Mapping[str, object] | None = None,
    check: bool = True,
) -> Sequential:
    """Import a torch model as a bregmod network with the same forward map.

    Parameters
    ----------
    module : nn.Module
        An ``nn.Sequential`` (nested ones too) of the modules in the table of `bregmod.torch`,
        or a single such module. Modules whose result depends on the mode (``Dropout``,
        ``BatchNorm``) must be in eval mode (``model.eval()``).
    input_shape : sequence of int
        Shape of one input, without the batch axis (e.g. ``(1, 28, 28)``).
    state_dict : mapping of str to tensor or array, optional
        Parameters to use instead of the module's own: a copy of ``module`` (the architecture)
        is loaded with them (``load_state_dict(strict=True)``). bregmod never unpickles a file;
        load it yourself (``torch.load(path, weights_only=True)``) and pass the mapping.
    check : bool, optional
        Compare the two forward maps on four random inputs in float64 and raise
        `ConversionError` if they differ by more than 10⁻⁸ relative to the output (a guard
        against modules whose forward pass is not what their type says).

    Returns
    -------
    Sequential
        The bregmod network; its parameters are float64 copies.

    Raises
    ------
    ConversionError
        For a module it cannot read: the message names the module, its position and why.
    ShapeError
        If ``input_shape`` does not fit the first module.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"input_shape must be a tuple of ints, got {input_shape!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise ShapeError(f"input_shape must have positive dimensions, got {shape}")
    if state_dict is not None:
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        module = copy.deepcopy(module)
        module.load_state_dict(
            {
                k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
                for k, v in state_dict.items()
            },
            strict=True,
        )
    importer = _Importer(shape)
    for name, leaf in _leaves(module, ""):
        importer.visit(name, leaf)
    network = importer.network()
    if check:
        _check_forward(module, network, shape)
    return network


def _check_forward(module: nn.Module, network: Network, shape: Shape) -> None:
    reference = copy.deepcopy(module).to("cpu", torch.float64)
    x = np.random.default_rng(0).standard_normal((4, *shape))
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    got = network(x)
    if got.shape != expected.shape:
        raise ConversionError(
            f"the import outputs shape {got.shape[1:]}, torch {expected.shape[1:]}"
        )
    gap = np.abs(got - expected).max()
    if gap > 1e-8 * (1.0 + np.abs(expected).max()):
        raise ConversionError(
            f"the imported network differs from the torch module by {gap:.3g} on random "
            "inputs; a module's forward is not what its type says"
        )


# --------------------------------------------------------------------------- the exporter
def _tensor(array) -> torch.Tensor:
    """A writable float64 tensor copy of a (possibly read-only) array."""
    return torch.from_numpy(np.array(array, dtype=np.float64))


def _reshape(from_shape: Shape, to_shape: Shape) -> list[nn.Module]:
    if from_shape == to_shape:
        return []
    modules: list[nn.Module] = [] if len(from_shape) == 1 else [nn.Flatten()]
    return modules if len(to_shape) == 1 else [*modules, nn.Unflatten(1, to_shape)]


def _torch_activation(activation: act.Activation, where: str) -> nn.Module | None:
    """The torch module of σ (None for the identity)."""
    simple = {"ReLU": nn.ReLU, "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid, "Softsign": nn.Softsign}
    kind = type(activation)
    if kind is act.Identity:
        return None
    if kind.__name__ in simple and kind is getattr(act, kind.__name__):
        return simple[kind.__name__]()
    if kind is act.LeakyReLU:
        return nn.LeakyReLU(activation.slope)
    if kind is act.SoftThreshold:
        return nn.Softshrink(activation.threshold)
    if kind is act.Clip:
        return nn.Hardtanh(activation.lo, activation.hi)
    if kind is act.ELU:
        return nn.ELU(activation.alpha)
    if kind is act.Softplus:
        return nn.Softplus(threshold=40.0)  # log(1 + e^x) − x < e^{−40} beyond
    if kind is act.Softmax:
        return nn.Softmax(dim=-1)
    if kind.__name__ in _Function._FUNCTIONS and kind is getattr(act, kind.__name__):
        return _Function(kind.__name__)
    raise ConversionError(
        f"{where}: to_torch has no torch module for the activation {activation.name}"
    )


def to_torch(network: Network, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """Export a bregmod network as an ``nn.Sequential`` with the same forward map.

    ``Dense`` becomes ``nn.Linear`` (with ``nn.Flatten``/``nn.Unflatten`` for its
    ``in_shape``/``out_shape``), ``Conv2d`` ``nn.Conv2d`` (plus ``nn.ZeroPad2d`` for uneven
    padding), ``Residual`` `bregmod.torch.Residual`; each activation its torch module (Arctan,
    ISRU and Asinh a small module of this file). The model is in eval mode.

    Parameters
    ----------
    network : Network
        A layer or a ``Sequential`` of ``Dense``, ``Conv2d`` and ``Residual`` layers.
    dtype : torch.dtype, optional
        dtype of the parameters (float64 by default, where the maps agree to rounding).

    Raises
    ------
    ConversionError
        For a layer or an activation with no torch counterpart (``ShallowSum``, ``Sparsemax``,
        activations defined symbolically).
    """
    if not isinstance(network, Network):
        raise TypeError(f"to_torch needs a bregmod network, got {type(network).__name__}")
    modules: list[nn.Module] = []
    shape = network.in_shape
    for j, layer in enumerate(network.layers, start=1):
        where = f"layer {j} ({layer.kind})"
        if isinstance(layer, ResidualLayer):
            m, n = layer.W.shape
            block = Residual(
                n, m, _torch_activation(layer.activation, where), tied=layer.v_is_wt, dtype=dtype
            )
            with torch.no_grad():
                block.linear.weight.copy_(_tensor(layer.W))
                block.linear.bias.copy_(_tensor(layer.b))
                if block.output is not None:
                    block.output.weight.copy_(_tensor(layer.V))
            modules.append(block)
            shape = layer.out_shape
            continue
        if isinstance(layer, Dense):
            m, n = layer.W.shape
            modules += _reshape(shape, (n,))
            affine = nn.Linear(n, m, dtype=dtype)
            weight, natural = layer.W, (m,)
        elif isinstance(layer, Conv2d):
            conv = layer.operator
            top, bottom, left, right = conv.padding
            if (top, left) != (bottom, right):
                modules.append(nn.ZeroPad2d((left, right, top, bottom)))
                top = left = 0
            C_out, C_in, kh, kw = conv.kernel.shape
            affine = nn.Conv2d(
                C_in, C_out, (kh, kw), stride=conv.stride, padding=(top, left), dtype=dtype
            )
            weight, natural = conv.kernel, conv.out_shape
        else:
            raise ConversionError(f"{where}: to_torch writes Dense, Conv2d and Residual layers")
        with torch.no_grad():
            affine.weight.copy_(_tensor(weight))
            affine.bias.copy_(_tensor(layer.b))
        modules.append(affine)
        sigma = _torch_activation(layer.activation, where)
        if sigma is not None:
            vector = layer.activation.is_vector and len(natural) > 1
            modules += [nn.Flatten(), sigma, nn.Unflatten(1, natural)] if vector else [sigma]
        modules += _reshape(natural, layer.out_shape)
        shape = layer.out_shape
    return nn.Sequential(*modules).to(dtype).eval()
