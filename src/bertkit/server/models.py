"""What the server serves: a model directory loaded once, with the endpoints its head supports.

Every endpoint runs bertkit's own inference code — the sentence-embedding engine, fill-mask,
and the fine-tuning :class:`~bertkit.tasks.predictor.Predictor` (classification, NER with
character offsets, QA) — on the items of one dynamic batch, so the server answers exactly what
the library and ``bertkit predict`` answer for the same texts.

Backends: ``torch`` (the bertkit model; every endpoint its head allows plus embeddings from its
encoder) or ``onnx`` (the model exported once at start-up with
:func:`~bertkit.export.onnx.export_onnx` and run by ONNX Runtime through
:class:`~bertkit.export.runtime.OnnxRuntimeModel`; the head's own endpoint only, since a graph
has one set of outputs; fill-mask needs the PyTorch head's sparse path and stays ``torch``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from bertkit.errors import UsageError
from bertkit.inference.embeddings import sentence_embeddings
from bertkit.inference.engine import Engine, resolve_device
from bertkit.inference.fill_mask import fill_mask, load_fill_mask
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertModel
from bertkit.server.seq2seq import Seq2SeqRunner, is_seq2seq
from bertkit.tasks.predictor import Predictor
from bertkit.tasks.registry import ROUTES, checkpoint_task, route_spec
from bertkit.tokenization import Tokenizer

logger = logging.getLogger("bertkit.server")

# what --task may name: the task registry's server routes, and an encoder-decoder's
TASKS = (*ROUTES, "generate")
BACKENDS = ("torch", "onnx")


def detect_task(directory: str | Path) -> str:
    """The server task of a checkpoint, from ``architectures`` in its ``config.json``."""
    spec = checkpoint_task(directory)
    if spec.route is None:
        raise UsageError(f"{directory}: a {spec.model_class.__name__} checkpoint has no server "
                         f"endpoint; pass --task one of {list(TASKS)}")
    return spec.route


@dataclass
class ServedModel:
    """One named model: its task, backend, tokenizer and the objects that run it.

    ``endpoints`` lists what it answers; :meth:`run` is what the batcher calls (in the worker
    thread) with a batch ``key`` ``(endpoint, *options)`` and the batch's payloads.
    """

    name: str
    directory: Path
    task: str
    backend: str
    tokenizer: Tokenizer
    endpoints: tuple[str, ...]
    dimensions: int
    engine: Engine | None = None
    predictor: Predictor | None = None
    seq2seq: Seq2SeqRunner | None = None  # an encoder–decoder (task "generate")
    workdir: Path | None = field(default=None, repr=False)

    @classmethod
    def load(cls, name: str, directory: str | Path, *, task: str = "auto",
             backend: str = "torch", device: str | None = None,
             batch_size: int = 32, quantize: str | None = None) -> ServedModel:
        """Load ``directory`` for ``task`` (``auto``: from its config) on ``backend``;
        ``quantize="int8"`` with int8 layers (torch backend, encoders)."""
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise UsageError(f"--model {name}={directory}: not a model directory (no "
                             "config.json)")
        if backend not in BACKENDS:
            raise UsageError(f"backend {backend!r}; expected one of {list(BACKENDS)}")
        if quantize is not None and (backend != "torch" or is_seq2seq(directory)):
            raise UsageError(f"--model {name}: quantize={quantize!r} runs on the torch backend "
                             "and encoders only (for ONNX, quantise the exported graph with "
                             "bertkit export quantize)")
        if is_seq2seq(directory):
            if backend != "torch":
                raise UsageError("an encoder-decoder is served on the torch backend only")
            runner = Seq2SeqRunner.load(directory, resolve_device(device), batch_size)
            return cls(name, directory, "generate", backend, runner.tokenizer, ("generate",),
                       runner.model.config.decoder.hidden_size, seq2seq=runner)
        task = detect_task(directory) if task == "auto" else route_spec(task).route
        if backend == "onnx" and task == "fill-mask":
            raise UsageError("fill-mask runs on the torch backend only (it projects the mask "
                             "positions alone through the vocabulary)")
        target = resolve_device(device)
        tokenizer = Tokenizer.from_pretrained(directory)
        model, workdir = None, None
        if backend == "onnx":
            model, workdir = _onnx_model(directory, task)
        served = cls(name, directory, task, backend, tokenizer, (), 0, workdir=workdir)
        if task == "fill-mask":
            served.engine = load_fill_mask(directory, device=target, batch_size=batch_size,
                                           quantize=quantize)
        elif task == "embeddings":
            if model is None:
                served.engine = Engine.from_pretrained(directory, model_class=BertModel,
                                                       device=target, batch_size=batch_size,
                                                       quantize=quantize)
            else:
                served.engine = Engine(model, tokenizer, batch_size=batch_size)
        else:
            served.predictor = Predictor.load(task, directory, model=model, batch_size=batch_size,
                                              device=str(target) if model is None else "cpu",
                                              quantize=quantize)
            if backend == "torch":  # the fine-tuned encoder embeds too
                served.engine = Engine(served.predictor.model, tokenizer, batch_size=batch_size)
        endpoints = [task] if task != "embeddings" else []
        if served.engine is not None and (backend == "torch" or task == "embeddings"):
            endpoints.append("embeddings")
        served.endpoints = tuple(endpoints)
        config = (served.engine or served.predictor).model.config  # type: ignore[union-attr]
        served.dimensions = config.hidden_size
        return served

    def close(self) -> None:
        """Remove the exported graph (ONNX backend)."""
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "backend": self.backend, "endpoints": list(self.endpoints),
                "dimensions": self.dimensions, "max_tokens": self.max_length}

    @property
    def max_length(self) -> int:
        if self.seq2seq is not None:
            return self.seq2seq.max_source_tokens
        if self.engine is not None:
            return self.engine.max_length
        return self.predictor.max_length  # type: ignore[union-attr]

    # ------------------------------------------------------------------ batching hooks

    def costs(self, endpoint: str, payloads: list[Any]) -> list[int]:
        """Token count of each payload (how the batcher groups by length and budgets)."""
        if not payloads:
            return []
        predictor = self.predictor
        if endpoint == self.task and predictor is not None and predictor.spec.choices:
            # (context, choices): every choice is its own (context, choice) sequence
            flat = [(p[0], choice) for p in payloads for choice in p[1]]
            encoded = self.tokenizer([f[0] for f in flat], [f[1] for f in flat])
            lengths = iter(len(ids) for ids in encoded["input_ids"])
            return [sum(next(lengths) for _ in p[1]) for p in payloads]
        if endpoint == self.task and predictor is not None and predictor.spec.paired:
            # (text, pair or None) / (question, context)
            second = [p[1] for p in payloads]
            encoded = self.tokenizer([p[0] for p in payloads],
                                     second if second[0] is not None else None)
        else:
            encoded = self.tokenizer(list(payloads))
        return [len(ids) for ids in encoded["input_ids"]]

    def run(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        """One batch through the model; one JSON-ready result per payload."""
        endpoint, *options = key  # type: ignore[misc]
        if endpoint == "embeddings":
            pooling, truncate = options
            vectors = sentence_embeddings(self.engine, None, payloads, pooling=pooling,
                                          truncate=truncate)
            return vectors.tolist()
        if endpoint == "generate":
            return self.seq2seq.run(options, payloads)  # type: ignore[union-attr]
        if endpoint == "fill-mask":
            top_k, truncate = options
            results = fill_mask(self.engine, None, payloads, top_k=top_k, truncate=truncate)
            return [result.to_dict() for result in results]
        if self.predictor is None or endpoint != self.task:
            raise UsageError(f"unknown endpoint {endpoint!r}")
        return self.predictor.serve(payloads)


def _onnx_model(directory: Path, task: str) -> tuple[nn.Module, Path]:
    """Export the checkpoint's graph for ``task`` into a fresh folder; the runtime model."""
    from bertkit.export.onnx import export_onnx, load_for_export
    from bertkit.export.runtime import OnnxRuntimeModel

    workdir = Path(tempfile.mkdtemp(prefix="bertkit-serve-"))
    try:
        model = load_for_export(directory, route_spec(task).head)
        path = export_onnx(model, workdir / f"{task}.onnx")
        logger.info("exported %s for %s to %s", directory, task, path)
        return OnnxRuntimeModel(path, BertConfig.from_pretrained(directory)), workdir
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
