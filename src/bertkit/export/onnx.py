"""ONNX export of every bertkit model class, a parity check against PyTorch, and an ONNX
Runtime runner usable as an inference backend.

Why a wrapper instead of exporting ``model.forward`` directly: the eager forward makes
data-dependent decisions that a graph must not bake in — :func:`bertkit.model.bert.padding_bias`
returns ``None`` for an unpadded batch (``bool(attention_mask.all())``), packing of real tokens
depends on how much of the batch is padding, and input checks read ``ids.min()``/``ids.max()``.
Traced on one example, each would freeze one branch into the graph (a graph exported from an
unpadded example would silently ignore the attention mask). :class:`ExportGraph` runs the same
submodules (embeddings, every encoder layer, pooler, head) on the one path that is right for
every input: the additive padding bias is always built, nothing is packed, nothing is checked.

The exporter is ``torch.onnx.export(..., dynamo=True)``: the legacy TorchScript exporter was
measured wrong on BERT-style graphs (perf-baselines, Caveats 2–3), the dynamo one correct.

Shape legend: B batch, C choices, T tokens, H hidden, V vocabulary, K labels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from bertkit.errors import BertkitError, CheckpointError, ConfigError, InputError, UsageError
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertModel, PreTrainedModel
from bertkit.tasks.registry import HEADS, TaskSpec, checkpoint_task, spec_of_class, task_spec

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_TOLERANCE = 1e-4
EXTRA_HINT = "install the optional extra: pip install 'bertkit[onnx]'"
EXTERNAL_DATA_BYTES = 1536 * 2**20
"""Weights above this size go to a ``<file>.data`` side file: a protobuf cannot exceed 2 GiB."""


class ParityError(BertkitError):
    """ONNX Runtime and PyTorch disagree by more than the tolerance (or the graph is unusable)."""


TASKS = HEADS
"""The exportable tasks by export name (``sequence-classification`` …): the task registry's
:data:`~bertkit.tasks.registry.HEADS`."""


def task_of(model: nn.Module) -> TaskSpec:
    """The :class:`TaskSpec` of a model instance (exact class, so subclasses must opt in)."""
    spec = spec_of_class(type(model))
    if spec is None:
        raise UsageError(f"cannot export {type(model).__name__}: ONNX export supports "
                         f"{sorted(s.model_class.__name__ for s in HEADS.values())}")
    return spec


def output_names(model: nn.Module) -> tuple[str, ...]:
    """The graph's output names; a :class:`BertModel` without pooler has no ``pooler_output``."""
    spec = task_of(model)
    if spec.model_class is BertModel and model.bert.pooler is None:
        return ("last_hidden_state",)
    return spec.outputs


class ExportGraph(nn.Module):
    """A bertkit model's inference forward on the single, input-independent path.

    Same parameters, same submodules, same numbers as ``model.eval()(…)`` at real positions
    (tested); returns a tuple in :func:`output_names` order. Inputs are all required, so the
    graph has a fixed signature: pass zeros for ``token_type_ids`` and ones for
    ``attention_mask`` when there are none.
    """

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model
        self.spec = task_of(model)
        self.names = output_names(model)

    def encode(self, input_ids: Tensor, attention_mask: Tensor,
               token_type_ids: Tensor) -> tuple[Tensor, Tensor | None]:
        bert = self.model.bert
        x = bert.embeddings(input_ids, token_type_ids)                        # (B, T, H)
        # Always the additive bias (never None): 0 where attended, the dtype's minimum where
        # padded — the value padding_bias builds, so masked scores vanish in the softmax.
        padded = attention_mask[:, None, None, :] == 0                         # (B, 1, 1, T)
        bias = padded.to(x.dtype) * torch.finfo(x.dtype).min
        for layer in bert.layers:
            x, _ = layer(x, bias)
        pooled = bert.pooler(x) if bert.pooler is not None else None           # (B, H)
        return x, pooled

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                token_type_ids: Tensor) -> tuple[Tensor, ...]:
        inputs = (input_ids, attention_mask, token_type_ids)
        if self.spec.choices:  # (B, C, T): encode B·C sequences, one score per choice
            choices = input_ids.shape[1]
            hidden, pooled = self.encode(*(t.flatten(0, 1) for t in inputs))
            return tuple(out.view(-1, choices)                                 # (B, C)
                         for out in self.spec.graph(self.model, hidden, pooled))
        hidden, pooled = self.encode(*inputs)
        return self.spec.graph(self.model, hidden, pooled)


def example_inputs(config: BertConfig, *, multiple_choice: bool = False, batch: int = 2,
                   length: int = 16, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Random ids with one padded row: the example the exporter traces.

    Batch and length are ≥ 2 so that the exporter does not specialise them to 0/1.
    """
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, 3, length) if multiple_choice else (batch, length)
    ids = torch.randint(0, config.vocab_size, shape, generator=generator)
    mask = torch.ones(shape, dtype=torch.long)
    mask[-1, ..., length // 2:] = 0
    types = torch.zeros(shape, dtype=torch.long)
    types[..., length // 2:] = min(1, max(config.type_vocab_size - 1, 0))
    return ids, mask, types


def export_onnx(model: PreTrainedModel, path: str | Path, *, opset: int | None = None,
                metadata: Mapping[str, str] | None = None) -> Path:
    """Export ``model`` to ``path`` with dynamic batch (and choice) and sequence axes.

    Inputs are ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64); outputs are named
    as the model's output fields (:func:`output_names`). The file is written atomically: the
    exporter writes into a temporary folder beside ``path`` and the result is moved into place
    (the weights side file ``<path>.data`` first, when the weights exceed
    :data:`EXTERNAL_DATA_BYTES`).
    """
    path = Path(path)
    _require_onnx()
    spec = task_of(model)
    if model.config.pre_layer_norm:
        # Measured: a tiny pre-LN model's ONNX logits differ by 9e-4 (post-LN: 1e-7); refused
        # until that is explained.
        raise ConfigError("export_onnx: pre-LN models (pre_layer_norm=True) are not exported "
                          "yet; run them in PyTorch")
    was_training = model.training
    model.eval()
    graph = ExportGraph(model).eval()
    multiple_choice = spec.choices
    args = example_inputs(model.config, multiple_choice=multiple_choice)
    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", max=model.config.max_position_embeddings)
    axes: dict[int, Any] = {0: batch, 1: sequence}
    if multiple_choice:
        axes = {0: batch, 1: torch.export.Dim("choices"), 2: sequence}
    dynamic = {name: dict(axes) for name in INPUT_NAMES}
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    try:
        with torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(
                graph, args, dynamo=True, input_names=list(INPUT_NAMES),
                output_names=list(graph.names), dynamic_shapes=dynamic,
                opset_version=opset, verbose=False)
    except Exception as err:  # the exporter raises many unrelated types
        raise UsageError(f"ONNX export of {type(model).__name__} failed "
                         f"(opset {opset or 'default'}): {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}") from err
    finally:
        model.train(was_training)
    props = {"bertkit.task": spec.head, "bertkit.model_class": type(model).__name__,
             "bertkit.outputs": json.dumps(list(graph.names)),
             "bertkit.per_token": json.dumps(sorted(spec.per_token & set(graph.names))),
             **(metadata or {})}
    program.model.metadata_props.update(props)
    return _save_atomically(program, path, weight_bytes)


def _save_atomically(program: Any, path: Path, weight_bytes: int) -> Path:
    """Save an exported program to ``path`` through a temporary folder beside it (weights in a
    ``.data`` side file above :data:`EXTERNAL_DATA_BYTES`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        program.save(staging / path.name, external_data=weight_bytes > EXTERNAL_DATA_BYTES)
        # Side files first, the graph that names them last: a reader never sees a graph
        # whose weights are missing.
        files = sorted(staging.iterdir(), key=lambda f: f.name == path.name)
        for produced in files:
            os.replace(produced, path.parent / produced.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's advisory chatter (unused axis names, torchvision not installed)
    so the CLI prints one line per export; real failures still raise."""
    noisy = logging.getLogger("torch.onnx")
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        noisy.setLevel(level)


def resolve_task(directory: str | Path, task: str = "auto") -> TaskSpec:
    """``auto`` reads ``architectures`` from ``config.json`` (a bare encoder when absent)."""
    return checkpoint_task(directory) if task == "auto" else task_spec(task)


def load_for_export(directory: str | Path, task: str = "auto") -> PreTrainedModel:
    """Load a model directory as the class ``task`` names, in eval mode, on the CPU."""
    spec = resolve_task(directory, task)
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"{directory}: no config.json (expected a model directory)")
    model = spec.model_class.from_pretrained(directory)
    return model.float().eval()


# ---------------------------------------------------------------------- running and verifying


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise UsageError(f"ONNX export needs {err.name}: {EXTRA_HINT}") from None


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(f"running ONNX models needs onnxruntime: {EXTRA_HINT}") from None
    return onnxruntime


class OnnxEncoder:
    """Run an exported bertkit graph with ONNX Runtime: tokenizer output in, numpy out.

    Takes the dict a :class:`~bertkit.tokenization.Tokenizer` returns (lists, numpy arrays or
    torch tensors); ``token_type_ids`` default to zeros and ``attention_mask`` to ones, as in the
    PyTorch model. Returns ``{output name: array}`` in the graph's output order.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None,
                 providers: Sequence[str] | None = None):
        ort = _ort()
        self.path = Path(path)
        if not self.path.is_file():
            raise UsageError(f"{self.path}: no such ONNX file")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as err:  # onnxruntime raises its own (Fail, InvalidGraph, …)
            raise ParityError(f"{self.path}: ONNX Runtime cannot load the graph: "
                              f"{str(err).splitlines()[0]}") from err
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        meta = self.session.get_modelmeta().custom_metadata_map
        self.task = meta.get("bertkit.task")
        self.per_token = frozenset(json.loads(meta.get("bertkit.per_token", "[]")))

    def feeds(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The graph's int64 arrays; absent ``attention_mask``/``token_type_ids`` filled in."""
        if "input_ids" not in inputs:
            raise InputError(f"inputs hold {sorted(inputs)}; expected input_ids "
                             "(and optionally attention_mask, token_type_ids)")
        ids = _as_int64(inputs["input_ids"], "input_ids")
        if ids.ndim == 1:
            raise InputError("input_ids must have shape (batch, tokens); tokenize a list of "
                             "texts (or pass return_tensors='np')")
        defaults = {"attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        feeds = {}
        for name in self.input_names:
            value = (_as_int64(inputs[name], name) if inputs.get(name) is not None
                     else defaults.get(name))
            if value is None:
                raise InputError(f"the graph {self.path.name} needs input {name!r}")
            if value.shape != ids.shape:
                raise InputError(f"{name} has shape {value.shape} but input_ids has {ids.shape}")
            feeds[name] = value
        return feeds

    def __call__(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        results = self.session.run(list(self.output_names), self.feeds(inputs))
        return dict(zip(self.output_names, results, strict=True))


def _as_int64(value: Any, name: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.integer)
                                     or array.dtype == np.bool_):
        raise InputError(f"{name} must hold integers of equal-length rows (pad the batch), "
                         f"got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64)


@dataclass
class ParityReport:
    """Max |ONNX − PyTorch| per output and per batch (token outputs at real positions only)."""

    tolerance: float
    rows: list[tuple[str, str, float]] = dataclasses.field(default_factory=list)

    @property
    def max_abs(self) -> dict[str, float]:
        worst: dict[str, float] = {}
        for _, output, delta in self.rows:
            worst[output] = max(worst.get(output, 0.0), delta)
        return worst

    @property
    def ok(self) -> bool:
        return all(delta <= self.tolerance for _, _, delta in self.rows)

    def table(self) -> str:
        lines = ["| batch | output | max abs diff | ok |", "|---|---|---|---|"]
        for batch, output, delta in self.rows:
            verdict = "yes" if delta <= self.tolerance else "NO"
            lines.append(f"| {batch} | {output} | {delta:.3g} | {verdict} |")
        return "\n".join(lines)


SAMPLE_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "ONNX Runtime and PyTorch should agree to within float rounding.",
    "Short one.",
    "A somewhat longer sentence, with punctuation; numbers like 3.14159 and 2026, and a "
    "name or two (Ada Lovelace, Alan Turing) to exercise the word-piece vocabulary.",
)


def default_batches(config: BertConfig, tokenizer: Any = None, *,
                    multiple_choice: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """A padded and an unpadded batch, of other sizes than the export example.

    Real sentences through the tokenizer when there is one, random ids otherwise.
    """
    if tokenizer is not None and not multiple_choice:
        padded = tokenizer(list(SAMPLE_TEXTS), padding=True, return_tensors="np")
        # The same pair twice: segment ids 0 and 1, and no padding at all.
        first = tokenizer([SAMPLE_TEXTS[0]] * 2, [SAMPLE_TEXTS[1]] * 2, padding=True,
                          return_tensors="np")
        return {"padded": {k: padded[k] for k in INPUT_NAMES if k in padded},
                "unpadded": {k: first[k] for k in INPUT_NAMES if k in first}}
    batches = {}
    for name, (batch, length, pad) in {"padded": (3, 23, True),
                                       "unpadded": (5, 9, False)}.items():
        ids, mask, types = (t.numpy() for t in example_inputs(
            config, multiple_choice=multiple_choice, batch=batch, length=length, seed=7))
        if not pad:
            mask = np.ones_like(mask)
        elif multiple_choice:
            mask[0, 1, 5:] = 0
        else:
            mask[0, 4:] = 0
        batches[name] = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return batches


def verify(path: str | Path | OnnxEncoder, model: PreTrainedModel,
           batches: Mapping[str, Mapping[str, Any]] | None = None, *, tokenizer: Any = None,
           tolerance: float = DEFAULT_TOLERANCE, raise_on_failure: bool = True) -> ParityReport:
    """Run ONNX Runtime and the PyTorch model on the same batches; compare every output.

    The oracle is the model's own eager forward (not the export wrapper), so a graph that baked
    in a branch, lost the mask, or carries tampered weights fails. Outputs with a token axis
    are compared at real positions only: at padded positions the eager model may return
    zeros (packing) where the graph returns values computed from pad tokens, and no reader
    uses either. Raises :class:`ParityError` above ``tolerance`` unless told not to.
    """
    runner = path if isinstance(path, OnnxEncoder) else OnnxEncoder(path)
    expected_names = output_names(model)
    if tuple(runner.output_names) != expected_names:
        raise ParityError(f"{runner.path}: graph outputs {list(runner.output_names)} but "
                          f"{type(model).__name__} has {list(expected_names)}")
    spec = task_of(model)
    if batches is None:
        batches = default_batches(model.config, tokenizer,
                                  multiple_choice=spec.choices)
    report = ParityReport(tolerance)
    model.eval()
    for label, inputs in batches.items():
        feeds = runner.feeds(inputs)
        got = runner(feeds)
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
        mask = feeds["attention_mask"].astype(bool)
        shape = "×".join(str(d) for d in feeds["input_ids"].shape)
        for name in expected_names:
            want = getattr(out, name).float().numpy()
            have = got[name]
            if have.shape != want.shape:
                raise ParityError(f"{runner.path}: output {name} has shape {have.shape} for "
                                  f"batch {label!r} but PyTorch gives {want.shape}")
            diff = np.abs(have.astype(np.float64) - want.astype(np.float64))
            if name in spec.per_token:
                diff = diff[mask]
            delta = float(diff.max()) if diff.size else 0.0
            if not math.isfinite(delta):
                delta = math.inf
            report.rows.append((f"{label} {shape}", name, delta))
    if raise_on_failure and not report.ok:
        worst = {k: f"{v:.3g}" for k, v in report.max_abs.items()}
        raise ParityError(f"{runner.path}: ONNX Runtime differs from PyTorch by more than "
                          f"{tolerance:g} (max |diff| per output: {worst})\n{report.table()}")
    return report
