"""Run a model over many texts: load once, tokenize once, batch by length, restore the order.

Every inference tool (fill-mask, embeddings, attention maps) goes through :class:`Engine`.
Why the detour instead of ``model(**tokenizer(texts, padding=True))``:

* **Length-sorted batches.** Real texts vary in length; padding every text to the longest one
  spends most of the work on padding (66 % for 64 real sentences of 10..128 tokens, see
  ``shared/reference/perf-baselines.md`` §2). The engine tokenizes every text once without
  padding, sorts by length, and cuts batches of neighbours, so each batch is padded only to its
  own longest text — then hands results back in the caller's order, exactly.
* **No silent truncation.** A text longer than the model is an error that names the text,
  unless the caller asked for truncation; embeddings take it whole through sliding windows
  (:mod:`bertkit.data.windows`).
* **One place for the run settings**: device, ``torch.inference_mode``, optional bfloat16.

Shape legend: B batch, T tokens (the batch's longest text), H hidden.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from bertkit.errors import InputError, UsageError
from bertkit.inference.fastpath import to_fast_form
from bertkit.inference.fastpath.quantized import check_quantization
from bertkit.model.config import BertConfig
from bertkit.model.placement import cpu_precision_problem, resolve_device, resolve_dtype
from bertkit.model.pretrained import BertModel, PreTrainedModel
from bertkit.tokenization import Encoding, Tokenizer

R = TypeVar("R")
logger = logging.getLogger("bertkit")

ENGINE_DTYPES = ("float32", "bfloat16")
"""What the engine runs in: float16 has no fast CPU kernels, and no GPU test covers it."""
DEFAULT_BATCH_SIZE = 32

LONG_TEXT_HINT = "split the text, or pass truncate=True (--truncate) to cut it on purpose " \
                 "(embeddings take long texts whole, through sliding windows)"


@dataclass(frozen=True)
class TextBatch:
    """Texts of similar length, padded to the longest of them: what the engine runs.

    Not :class:`bertkit.data.batch.Batch` (a training step's tensors with their labels): this
    one has no labels but what puts results back in order. ``indices`` are the texts'
    positions in the caller's list; ``rows`` their tokenizer output (unpadded lists: ids, and
    offsets / word ids when requested).
    """

    indices: list[int]
    input_ids: Tensor         # (B, T)
    attention_mask: Tensor    # (B, T) 1 = real token, 0 = padding
    lengths: list[int]
    rows: list[dict[str, Any]]


class Engine:
    """A model and its tokenizer, with the batching every inference tool shares.

    Build one from a checkpoint directory with :meth:`from_pretrained`, or wrap a model you
    already hold (it is used as it is: its device and dtype decide where and how it runs).

    ``autocast=True`` runs the forward pass under ``torch.autocast(bfloat16)`` with fp32
    weights; ``from_pretrained(dtype="bfloat16")`` instead casts the weights once, which is
    faster on CPU (no per-call weight casts). Both are opt-in: bfloat16 moves hidden states by
    ~5e-2 (perf-baselines §2), so fp32 stays the default; and on CPUs without native bf16
    instructions (AVX2-only) it is emulated and several times slower than fp32.
    """

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, truncate: bool = False,
                 autocast: bool = False, max_length: int | None = None):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise UsageError(f"batch_size={batch_size!r}; expected a positive int")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.truncate = truncate
        self.autocast = autocast
        config = getattr(model, "config", None)
        limit = tokenizer.model_max_length
        if config is not None:
            limit = min(limit, config.max_tokens)  # RoBERTa: positions start past padding
        if max_length is not None:
            if max_length < 3 or max_length > limit:
                raise UsageError(f"max_length={max_length}; expected 3..{limit} (the model's "
                                 "and tokenizer's limit)")
            limit = max_length
        self.max_length = limit

    @classmethod
    def from_pretrained(cls, path: str | Path, *,
                        model_class: type[PreTrainedModel] = BertModel,
                        device: str | torch.device | None = None,
                        dtype: str | torch.dtype = "float32", quantize: str | None = None,
                        force_dtype: bool = False, **options: Any) -> Engine:
        """Load the model in its fast form for inference (eval mode, prepacked weights on CPU;
        see :func:`bertkit.inference.fastpath.to_fast_form`), and the tokenizer saved beside
        it, once.

        ``device=None`` uses CUDA when available; ``dtype="bfloat16"`` casts the weights;
        ``quantize="int8"`` loads int8 layers for the CPU
        (:mod:`bertkit.inference.fastpath.quantized`). A dtype that would run several times
        slower on this CPU (bfloat16 without bf16 instructions) is refused with the reason,
        unless ``force_dtype`` (then a warning says it). Other keyword arguments go to
        :class:`Engine` (``batch_size``, ``truncate``, …).
        """
        path = Path(path)
        if not path.is_dir():
            raise UsageError(f"{path}: not a model directory (expected a folder with "
                             "config.json, model.safetensors and a tokenizer)")
        torch_dtype = resolve_dtype(dtype, allowed=ENGINE_DTYPES)
        target = resolve_device(device)
        check_quantization(quantize, torch_dtype, target)
        problem = cpu_precision_problem(torch_dtype) if target.type == "cpu" else None
        if problem is not None and not force_dtype:
            raise UsageError(f"dtype={dtype}: {problem}; force it with force_dtype=True "
                             "(--force-dtype) to run it anyway")
        tokenizer = Tokenizer.from_pretrained(path)
        # The checkpoint's family picks the class: a RoBERTa folder loads as RobertaModel.
        model_class = model_class.for_family(BertConfig.from_pretrained(path).model_type)
        with _LoadWarnings() as held:
            model, report = model_class.from_pretrained(path, output_loading_info=True,
                                                        quantize=quantize)
        # Inference never reads the pooler, and a checkpoint's unused heads (an MLM head when
        # embedding) are expected: say so quietly. Any other fresh weight is a real problem.
        fresh = [name for name in report.new if not name.startswith("bert.pooler.")]
        if fresh:
            for record in held.records:
                logger.handle(record)
        elif report.unused:
            logger.info("%s: checkpoint tensors not used for inference: %d (%s …)", path,
                        len(report.unused), report.unused[0])
        if problem is not None:
            logger.warning("dtype=%s (forced): %s", dtype, problem)
        if quantize is None:  # an int8 model is loaded on the CPU in its fast form already
            model.to(device=target, dtype=torch_dtype)
        return cls(to_fast_form(model.eval()), tokenizer, **options)

    # ------------------------------------------------------------------ properties

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    # ------------------------------------------------------------------ tokenizing

    def encode(self, texts: Sequence[str], *, offsets: bool = False, word_ids: bool = False,
               check: bool = True) -> list[dict[str, Any]]:
        """Tokenize every text once, unpadded; one dict of lists per text.

        A text longer than :attr:`max_length` raises an :class:`InputError` naming it (or is cut
        to ``max_length`` when the engine was built with ``truncate=True``); ``check=False``
        lets it through for a caller that windows it.
        """
        texts = check_texts(texts)
        if not texts:
            return []
        encoded: Encoding = self.tokenizer(
            texts, truncation=self.truncate, max_length=self.max_length if self.truncate
            else None, return_offsets_mapping=offsets, return_word_ids=word_ids)
        keys = list(encoded)
        rows = [{key: encoded[key][i] for key in keys} for i in range(len(texts))]
        if check and not self.truncate:
            self.check_lengths(rows)
        return rows

    def check_lengths(self, rows: Sequence[dict[str, Any]]) -> None:
        """Refuse texts the model cannot see whole (never truncate silently)."""
        for index, row in enumerate(rows):
            length = len(row["input_ids"])
            if length > self.max_length:
                raise InputError(f"text {index} has {length} tokens, which exceeds the model's "
                                 f"{self.max_length}; {LONG_TEXT_HINT}")

    # ------------------------------------------------------------------ batching

    def batches(self, rows: Sequence[dict[str, Any]]) -> Iterator[TextBatch]:
        """Batches of texts sorted by length, longest first (a memory problem shows at once).

        Sorting is stable, so texts of equal length keep their relative order.
        """
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.batch_size):
            indices = order[start:start + self.batch_size]
            chunk = [rows[i] for i in indices]
            lengths = [len(row["input_ids"]) for row in chunk]
            width = max(lengths)
            ids = np.full((len(chunk), width), pad, dtype=np.int64)          # (B, T)
            for r, row in enumerate(chunk):
                ids[r, :lengths[r]] = row["input_ids"]
            mask = (np.arange(width)[None, :] < np.array(lengths)[:, None])  # (B, T)
            yield TextBatch(indices=indices,
                        input_ids=torch.from_numpy(ids).to(self.device),
                        attention_mask=torch.from_numpy(mask.astype(np.int64)).to(self.device),
                        lengths=lengths, rows=chunk)

    def run_context(self) -> contextlib.AbstractContextManager[Any]:
        """``inference_mode``, plus bfloat16 autocast when asked for."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.autocast:
            stack.enter_context(torch.autocast(self.device.type, dtype=torch.bfloat16))
        return stack

    def map(self, rows: Sequence[dict[str, Any]], step: Callable[[TextBatch], Sequence[R]]
            ) -> list[R]:
        """Call ``step`` on every length-sorted batch; return its per-text results in the
        order of ``rows`` (``step`` returns one result per text of its batch, in batch order)."""
        results: list[Any] = [None] * len(rows)
        was_training = self.model.training
        self.model.eval()
        try:
            with self.run_context():
                for batch in self.batches(rows):
                    outputs = step(batch)
                    if len(outputs) != len(batch.indices):
                        raise UsageError(f"a batch step returned {len(outputs)} results for "
                                         f"{len(batch.indices)} texts")
                    for index, output in zip(batch.indices, outputs, strict=True):
                        results[index] = output
        finally:
            self.model.train(was_training)
        return results


class _LoadWarnings(logging.Filter):
    """Hold back the loader's warnings while a model loads, to re-emit only those that
    matter for inference."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False

    def __enter__(self) -> _LoadWarnings:
        logger.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logger.removeFilter(self)


def check_texts(texts: Sequence[str] | str) -> list[str]:
    """A list of str, with an error naming the first item that is not one."""
    if isinstance(texts, str):
        return [texts]
    if texts is None or isinstance(texts, (bytes, int, float)):
        raise UsageError(f"texts must be a str or a list of str, got {type(texts).__name__}")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise UsageError(f"text {index} is {type(text).__name__}; expected a str")
    return texts


def as_engine(model: nn.Module | Engine, tokenizer: Tokenizer | None, **options: Any) -> Engine:
    """Accept either an :class:`Engine` or a (model, tokenizer) pair (the functional API).

    Options left at ``None`` keep the engine's (or :class:`Engine`'s default) setting.
    """
    options = {key: value for key, value in options.items() if value is not None}
    if isinstance(model, Engine):
        if not options:
            return model
        current = {"batch_size": model.batch_size, "truncate": model.truncate,
                   "autocast": model.autocast, "max_length": model.max_length}
        return Engine(model.model, model.tokenizer, **{**current, **options})
    if tokenizer is None:
        raise UsageError("pass a tokenizer with the model (or an Engine)")
    return Engine(model, tokenizer, **options)
