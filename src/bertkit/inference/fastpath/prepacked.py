"""Inference-only linear layers whose weights are laid out once for oneDNN's CPU kernels.

Why: an ordinary ``F.linear`` on CPU re-packs its weight matrix into the GEMM kernel's blocked
layout on every call. With many rows (a batch of long sequences) that copy is lost in the
arithmetic; with few (one 128-token sentence, an HTTP request) it is a large part of the
call, and the weights are cold in cache besides. Reordering each weight once, when a model is
prepared for inference, removes that work: on all-MiniLM-L6-v2 at 1×128 the encoder's 24
matrix multiplies run ~13 % faster (``benchmarks/forward.py`` measures the whole model).

Two element-wise passes over the layer's output also join the matrix multiply as oneDNN
post-ops, computed while the output is still in cache: the feed-forward non-linearity (GELU or
ReLU, :meth:`PrepackedLinear.with_activation`) and the residual add
(:meth:`PrepackedLinear.add`); on all-MiniLM-L6-v2 they make the whole model ~6 % faster at
1×128 and ~10 % at 8×128, with outputs that matched the unfused path bit for bit.

The reordered weight is an opaque oneDNN tensor of the same size, so memory does not grow; the
layer still writes an ordinary ``weight``/``bias`` to its state dict, so a prepared model saves
like any other. It computes no gradients: it is for ``torch.inference_mode()`` / ``no_grad``
forward passes, and refuses an input that needs one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.errors import UsageError
from bertkit.model.config import ACTIVATIONS, GELU_TANH

_ONEDNN_FORMS: dict[Callable[[Tensor], Tensor], tuple[str, str]] = {
    F.gelu: ("gelu", "none"),             # exact erf form
    GELU_TANH: ("gelu", "tanh"),
    F.relu: ("relu", ""),
}

POST_OPS: dict[str, tuple[str, str]] = {
    name: _ONEDNN_FORMS[function] for name, function in ACTIVATIONS.items()
    if function in _ONEDNN_FORMS
}
"""oneDNN post-op (name, algorithm) for each activation name whose function oneDNN computes
exactly as PyTorch, derived from the one activation table (:data:`ACTIVATIONS`)."""


def prepacking_available() -> bool:
    """True when this PyTorch build has oneDNN and its prepacked linear operators."""
    return (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


class PrepackedLinear(nn.Module):
    """``nn.Linear``'s forward pass with the weight reordered once for oneDNN (float32, CPU)."""

    def __init__(self, linear: nn.Linear, rows_hint: int | None = None):
        super().__init__()
        self.post_op: tuple[str, str] = ("none", "")
        if linear.bias is None:
            raise UsageError("PrepackedLinear needs a linear layer with a bias")
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        # ``rows_hint`` tells oneDNN the typical number of rows, to pick its blocking; any
        # number of rows still works.
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(
            linear.weight.detach(), rows_hint)
        self.bias = linear.bias.detach()

    def with_activation(self, hidden_act: str) -> bool:
        """Apply the activation named ``hidden_act`` to the output in the same call; False
        (nothing changes) when oneDNN has no exact post-op for it (:data:`POST_OPS`)."""
        post_op = POST_OPS.get(hidden_act)
        if post_op is None:
            return False
        self.post_op = post_op
        return True

    def forward(self, x: Tensor) -> Tensor:
        _refuse_gradients(x)
        name, algorithm = self.post_op
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, name,
                                                  [], algorithm)

    def add(self, x: Tensor, residual: Tensor) -> Tensor:
        """``self(x) + residual`` in one call (the add is a post-op; no activation)."""
        _refuse_gradients(x)
        if self.post_op[0] != "none":
            raise UsageError("add() needs a layer without an activation post-op")
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual, self.packed_weight,
                                                         self.bias, "add")

    @property
    def weight(self) -> Tensor:
        """The weight in its ordinary (out, in) layout, as ``nn.Linear`` has it."""
        return self.packed_weight.to_dense()

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str,
                            keep_vars: bool) -> None:
        destination[prefix + "weight"] = self.weight
        destination[prefix + "bias"] = self.bias

    def extra_repr(self) -> str:
        post_op = "" if self.post_op[0] == "none" else f", then {self.post_op[0]}"
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"prepacked{post_op}")


def _refuse_gradients(x: Tensor) -> None:
    if x.requires_grad:
        raise UsageError("this model was prepared for inference (prepacked weights): it "
                         "cannot compute gradients; load it afresh to train it")


def residual_projection(linear: nn.Module, x: Tensor, residual: Tensor,
                        dropout: nn.Dropout) -> Tensor:
    """``residual + dropout(linear(x))``, a sublayer's output projection and residual
    connection: one oneDNN call when ``linear`` is prepacked and dropout is off."""
    if isinstance(linear, PrepackedLinear) and not (dropout.training and dropout.p > 0):
        return linear.add(x, residual)
    return residual + dropout(linear(x))


def prepack_linears(module: nn.Module, *, rows_hint: int | None = None) -> int:
    """Replace every float32 CPU ``nn.Linear`` inside ``module`` by a :class:`PrepackedLinear`.

    Returns how many were replaced: 0 when oneDNN is unavailable, or the layers are not float32
    on CPU, which leaves the module exactly as it was. Weights shared between layers (tied) are
    left alone, so a tie is never split into two copies.
    """
    if not prepacking_available():
        return 0
    shared = _shared_weights(module)
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if (type(child) is nn.Linear and child.bias is not None
                    and child.weight.dtype == torch.float32 and child.weight.device.type == "cpu"
                    and id(child.weight) not in shared):
                setattr(parent, name, PrepackedLinear(child, rows_hint))
                replaced += 1
    return replaced


def _shared_weights(module: nn.Module) -> set[int]:
    """Ids of parameters reachable under more than one name (tied weights)."""
    seen: dict[int, int] = {}
    for _, parameter in module.named_parameters(remove_duplicate=False):
        seen[id(parameter)] = seen.get(id(parameter), 0) + 1
    return {key for key, count in seen.items() if count > 1}
