"""int8 inference in PyTorch: the encoder's attention projections with int8 weights and
dynamically quantised int8 activations (``from_pretrained(quantize="int8")``).

Kernels: ``torch.ao.quantization.quantize_dynamic``'s linear layers (fbgemm / oneDNN, VNNI
where the CPU has it), with per-channel weight scales and one activation scale per tensor,
computed on every call over the full 8-bit range (:class:`FullRangeInt8Linear`).

Which layers, by measurement (all-MiniLM-L6-v2, mean-pooled vectors of 48 real dialogue lines
from ``real_lines``, cosine to float32; the first two rows on 128 package summaries):

======================================================  ==========  ==========
int8 layers (per-channel weights unless said)           min cosine  mean cosine
======================================================  ==========  ==========
every linear layer, per-tensor weights, 7-bit inputs    0.889       0.946
every linear layer, 7-bit inputs (torch's default)      0.950       0.975
every linear layer, 8-bit inputs                        0.961       0.987
Q/K/V and attention output, 7-bit inputs                0.975       0.992
Q/K/V and attention output, 8-bit inputs (chosen)       0.992       0.997
======================================================  ==========  ==========

The feed-forward inputs (LayerNorm outputs with a few outlier channels, GELU outputs) do not
survive one int8 scale per tensor, so the feed-forward network stays float32 (prepacked).
Per-token activation scales (``torch._int_mm``) kept every layer at 0.9975 mean cosine but ran
25× slower than float32 on this build's CPU kernels, so they are not used.

Speed depends on the CPU's int8 instructions. Without VNNI (an AVX2-only AMD EPYC, engine
``x86``, one thread, CPU seconds; ``benchmarks/int8_gemm.py --threads 1``) each MiniLM layer
shape ran at 0.92–0.99× its float32 prepacked time at 128 and 1,024 rows, FFN included, so
there int8 saves memory, not time; AVX512-VNNI / AMX are where the kernels are faster.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from bertkit.errors import UsageError
from bertkit.inference.fastpath.form import to_fast_form

QUANTIZATIONS = ("int8",)
"""What ``from_pretrained(quantize=...)`` accepts."""

X86_ENGINES = ("x86", "fbgemm", "onednn")
"""The ``torch.backends.quantized`` engines whose int8 linear kernels this path uses."""

INT8_LAYERS = ("attention.qkv", "attention.output")
"""Linear layers of each encoder layer that run in int8 (the table above says why)."""


def check_quantization(quantize: str | None, dtype: torch.dtype,
                       device: torch.device) -> None:
    """Refuse a quantisation this build, dtype or device cannot run, naming what can."""
    if quantize is None:
        return
    if quantize not in QUANTIZATIONS:
        raise UsageError(f"quantize={quantize!r}; expected one of {list(QUANTIZATIONS)} "
                         "or None")
    if dtype != torch.float32:
        raise UsageError(f"quantize={quantize!r} with dtype={dtype}: int8 keeps the layers it "
                         "does not quantise in float32; drop dtype (or pass float32)")
    if device.type != "cpu":
        raise UsageError(f"quantize={quantize!r} runs on the CPU only (device {device})")
    if not hasattr(torch.ao, "quantization"):
        raise UsageError("this PyTorch build has no torch.ao.quantization (int8 kernels)")
    engines = torch.backends.quantized.supported_engines
    if not set(engines) & set(X86_ENGINES):
        raise UsageError(f"quantize={quantize!r} needs one of the x86 int8 engines "
                         f"{list(X86_ENGINES)}; this PyTorch build has {engines}")


class FullRangeInt8Linear(torch.ao.nn.quantized.dynamic.Linear):
    """A dynamically quantised linear layer whose activations use all 256 int8 levels.

    ``torch``'s own forward passes ``reduce_range=True`` (7 bits, a guard against int16
    saturation in old AVX2 kernels); on MiniLM that costs 0.005 of mean cosine (table above),
    and the x86 and oneDNN engines gave the same vectors at 8 bits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params,
                                                  reduce_range=False)


def quantize_int8(model: nn.Module) -> nn.Module:
    """Quantise ``model``'s encoder layers (:data:`INT8_LAYERS`) in place, then put it in
    its fast form (:func:`to_fast_form`); returns ``model``, now for inference only."""
    encoder = model.bert
    spec = {f"{index}.{name}": torch.ao.quantization.per_channel_dynamic_qconfig
            for index in range(len(encoder.layers)) for name in INT8_LAYERS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its deprecation
        torch.ao.quantization.quantize_dynamic(encoder.layers, spec, dtype=torch.qint8,
                                               inplace=True)
    for module in encoder.modules():
        if type(module) is torch.ao.nn.quantized.dynamic.Linear:
            module.__class__ = FullRangeInt8Linear
    return to_fast_form(model.eval())


def is_quantized(model: nn.Module) -> bool:
    """Whether ``model`` holds dynamically quantised layers (it cannot be trained)."""
    return any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules())
