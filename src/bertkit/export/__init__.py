"""Export bertkit models to other runtimes: ONNX (any head, dynamic axes, a parity check built
in) and int8 dynamic quantisation. Needs the optional ``onnx`` extra; importing this package
does not, only calling into it does."""

from bertkit.export.onnx import (
    TASKS,
    ExportGraph,
    OnnxEncoder,
    ParityError,
    ParityReport,
    export_onnx,
    load_for_export,
    output_names,
    verify,
)
from bertkit.export.quantize import quantize_onnx, quantize_torch

__all__ = ["TASKS", "ExportGraph", "OnnxEncoder", "ParityError", "ParityReport", "export_onnx",
           "load_for_export", "output_names", "quantize_onnx", "quantize_torch", "verify"]
