"""int8 dynamic quantisation: ONNX Runtime (a quantised ``.onnx``) and PyTorch (Linear layers).

Why dynamic: BERT inference is dominated by the Linear layers' matrix multiplies; dynamic
quantisation stores their weights as int8 and quantises activations per batch at run time, so it
needs no calibration data and keeps LayerNorm, softmax and GELU in float. The accuracy cost is
model- and task-specific: measure it (``benchmarks/onnx_bench.py`` reports embedding drift;
:func:`bertkit.export.onnx.verify` with a loose tolerance bounds it per output).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from bertkit.errors import UsageError
from bertkit.export.onnx import EXTRA_HINT


def quantize_onnx(source: str | Path, target: str | Path, *, per_channel: bool = True,
                  op_types: tuple[str, ...] = ("MatMul", "Gemm")) -> Path:
    """Write an int8 dynamically quantised copy of the ONNX graph ``source`` to ``target``.

    Weights of ``MatMul``/``Gemm`` nodes (every Linear layer) become signed int8 with one
    scale per output channel by default. Measured on all-MiniLM-L6-v2 over 32 real sentences
    (AVX2 CPU, no VNNI): one scale per tensor kept mean-pooled sentence vectors at cosine
    0.83 (min) / 0.93 (mean) to fp32, per channel at 0.965 / 0.987 (the fused Q/K/V matrix
    mixes three value ranges under one scale). The exporter's ``value_info`` (intermediate
    shapes) is dropped first: onnxruntime 1.31's quantiser re-infers shapes after rewriting,
    and the stale entries made it fail on heads with a non-square ``Gemm`` ("Inferred shape
    and existing shape differ"). The file appears atomically.
    """
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise UsageError(f"{source}: no such ONNX file to quantise")
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise UsageError(f"quantisation needs onnxruntime: {EXTRA_HINT}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    quiet = logging.getLogger()
    level = quiet.level
    try:
        quiet.setLevel(max(level, logging.ERROR))  # ORT logs "please run pre-processing" hints
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto = onnx.load(str(source), load_external_data=False)
            # Weights in a side file (graphs over 2 GiB) go to one again.
            big = any(t.data_location == onnx.TensorProto.EXTERNAL
                      for t in proto.graph.initializer)
            onnx.load_external_data_for_model(proto, str(source.parent))
            del proto.graph.value_info[:]
            quantize_dynamic(proto, staging / target.name, op_types_to_quantize=list(op_types),
                             per_channel=per_channel, weight_type=QuantType.QInt8,
                             use_external_data_format=big)
        files = sorted(staging.iterdir(), key=lambda f: f.name == target.name)
        for produced in files:
            os.replace(produced, target.parent / produced.name)
    except UsageError:
        raise
    except Exception as err:  # onnx / onnxruntime raise many unrelated types
        raise UsageError(f"{source}: ONNX Runtime could not quantise the graph: "
                         f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                         ) from err
    finally:
        quiet.setLevel(level)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def quantize_torch(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantised to int8 (CPU only).

    Per-channel weight scales, for the reason given in :func:`quantize_onnx`. The tied MLM
    decoder is a raw matrix (``F.linear`` on the embedding weight), not an ``nn.Linear``, so it
    stays float — as does everything else outside Linear layers.
    """
    import copy

    quantized = copy.deepcopy(model).float().eval().cpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its deprecation
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        return torch.ao.quantization.quantize_dynamic(quantized, {nn.Linear: qconfig},
                                                      dtype=torch.qint8)
