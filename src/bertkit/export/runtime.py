"""ONNX Runtime as a backend of bertkit's inference code: an exported graph behind the interface
of the bertkit model class it came from.

Why a stand-in module rather than ONNX branches in every tool: the inference
:class:`~bertkit.inference.engine.Engine` (embeddings), the fine-tuning predictors
(classification, NER, QA windows) and the server call ``model(**inputs)`` and read the output
dataclass's fields; :class:`OnnxRuntimeModel` answers exactly that (same field names, torch
tensors), so the batching, windowing and decoding code is the one the PyTorch path runs. What a
graph cannot give is refused with a clear error: hidden states of other layers than the last,
attention maps, losses, and the masked-LM head's sparse path used by fill-mask.

Shape legend: B batch, T tokens, H hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bertkit.errors import UsageError
from bertkit.export.onnx import OnnxEncoder
from bertkit.model.config import BertConfig
from bertkit.model.outputs import ModelOutput
from bertkit.tasks.registry import HEADS


class OnnxRuntimeModel(nn.Module):
    """Runs the graph at ``path`` (written by :func:`~bertkit.export.onnx.export_onnx`) with
    ONNX Runtime and returns the output dataclass of the exported model class.

    ``config`` is the model directory's :class:`BertConfig` (the Engine reads the position
    limit, the predictors the labels). An encoder graph also answers ``model.bert(...)``, which
    is what the embedding code calls. Outputs are float32 CPU tensors: move results, not the
    module (``.to(device)`` is accepted and changes nothing, ONNX Runtime runs on its own
    execution provider).
    """

    def __init__(self, path: str | Path, config: BertConfig, *, threads: int | None = None):
        super().__init__()
        self.runner = OnnxEncoder(path, threads=threads)
        self.config = config
        self.task = self.runner.task or "encoder"
        if self.task not in HEADS:
            raise UsageError(f"{path}: graph task {self.task!r} is not a bertkit export")
        # An empty parameter: the Engine reads the device and dtype from the parameters.
        self.anchor = nn.Parameter(torch.empty(0), requires_grad=False)
        if self.task == "encoder":
            self.bert = _EncoderView(self)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, *, labels: Any = None,
                output_hidden_states: bool = False, output_attentions: Any = False,
                **unused: Any) -> ModelOutput:
        if labels is not None or output_hidden_states or output_attentions:
            raise UsageError("an ONNX Runtime model returns the graph's outputs only (no loss, "
                             "no hidden states of other layers, no attention maps); use the "
                             "PyTorch backend for those")
        arrays = self.runner({"input_ids": input_ids, "attention_mask": attention_mask,
                              "token_type_ids": token_type_ids})
        return HEADS[self.task].output_class(**{name: torch.from_numpy(array)
                                                for name, array in arrays.items()})


class _EncoderView(nn.Module):
    """``model.bert`` of an encoder graph: ``(ids, mask) → EncoderOutput`` with as many
    ``layers`` as the config says (the embedding code counts them to resolve ``-1``)."""

    def __init__(self, owner: OnnxRuntimeModel):
        super().__init__()
        self._owner = [owner]  # a list: not registered as a submodule (no cycle)
        self.layers = [None] * owner.config.num_hidden_layers

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, **options: Any) -> ModelOutput:
        return self._owner[0](input_ids, attention_mask, token_type_ids, **options)
