"""ONNX export tests need the optional ``onnx`` extra; without it they skip with that reason."""

from __future__ import annotations

import pytest

for _module in ("onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(_module, reason=f"{_module} not installed (pip install 'bertkit[onnx]')")
