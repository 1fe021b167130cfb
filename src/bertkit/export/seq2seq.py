"""ONNX export of an :class:`~bertkit.model.encoder_decoder.EncoderDecoderModel` as the two
graphs a generation loop needs, their parity check against PyTorch, and greedy decoding on
ONNX Runtime.

- ``encoder.onnx``: the encoder exactly as :func:`bertkit.export.onnx.export_onnx` exports a
  :class:`~bertkit.model.pretrained.BertModel` (inputs ``input_ids``, ``attention_mask``,
  ``token_type_ids``; outputs ``last_hidden_state`` and, when the encoder has one,
  ``pooler_output``), checked by the same :func:`~bertkit.export.onnx.verify`.
- ``decoder_step.onnx``: one decoding step WITHOUT a key/value cache: inputs
  ``decoder_input_ids`` (B, T) — the whole target prefix, starting with the decoder start
  token —, ``encoder_hidden_states`` (B, S, H) and ``encoder_attention_mask`` (B, S); output
  ``next_token_logits`` (B, V), the logits after the prefix's last token. Each step therefore
  recomputes the prefix: T steps cost O(T²) decoder positions where the PyTorch decoder's
  cache costs O(T) (``benchmarks/generate.py`` measured the cache 4.98× faster for 64 tokens).
  A cached step graph (per-layer self- and cross-attention keys and values as inputs and
  outputs) is not in this version, for time only: it would be traced with a cached length
  of at least 2 (the exporter specialises sizes 0 and 1) and the first step would run here.

Parity: the encoder as for every other head; the step graph against
:meth:`EncoderDecoderModel.decode` (which runs the ``transformers``-compatible decoder) on a
padded batch of sources and two prefix lengths; and greedy decoding through both graphs
against ``model.generate`` (token-identical). Shape legend: B batch, S source tokens, T target
tokens, H hidden, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from bertkit.errors import UsageError
from bertkit.export.onnx import (
    DEFAULT_TOLERANCE,
    OnnxEncoder,
    ParityError,
    ParityReport,
    default_batches,
    export_onnx,
    verify,
)
from bertkit.model.encoder_decoder import EncoderDecoderModel

__all__ = ["DECODER_FILE", "ENCODER_FILE", "DecoderStepGraph", "OnnxSeq2Seq",
           "Seq2SeqParity", "export_seq2seq_onnx", "verify_seq2seq"]

ENCODER_FILE, DECODER_FILE = "encoder.onnx", "decoder_step.onnx"
STEP_INPUTS = ("decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask")


class DecoderStepGraph(nn.Module):
    """The decoder's forward on the single, input-independent path, for one step: the source
    padding bias is always built (never ``None``), no input checks, logits of the last
    position only. Same submodules and numbers as ``EncoderDecoderModel.decode`` without a
    cache (tested)."""

    def __init__(self, model: EncoderDecoderModel):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, decoder_input_ids: Tensor, encoder_hidden_states: Tensor,
                encoder_attention_mask: Tensor) -> Tensor:
        bert = self.decoder.bert
        x = bert.embeddings(decoder_input_ids, None)                          # (B, T, H)
        padded = encoder_attention_mask[:, None, None, :] == 0                 # (B, 1, 1, S)
        source_bias = padded.to(x.dtype) * torch.finfo(x.dtype).min
        for layer in bert.layers:
            x, _, _, _ = layer(x, None, encoder_hidden_states, source_bias)
        last = x[:, -1:]                                                       # (B, 1, H)
        return self.decoder.mlm(last, bert.embeddings.word.weight)[:, 0]       # (B, V)


def export_seq2seq_onnx(model: EncoderDecoderModel, out_dir: str | Path, *,
                        opset: int | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/encoder.onnx`` and ``out_dir/decoder_step.onnx`` (dynamic batch,
    source and target axes; each written atomically); return their paths."""
    if not isinstance(model, EncoderDecoderModel):
        raise UsageError(f"export_seq2seq_onnx takes an EncoderDecoderModel, got "
                         f"{type(model).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: an encoder–decoder exports two graphs; --out must name a "
                         "directory (it holds a file)")
    out.mkdir(parents=True, exist_ok=True)
    meta = {"bertkit.seq2seq.decoder_start_token_id": str(model.start_token_id),
            "bertkit.seq2seq.eos_token_id": str(model.config.eos_token_id),
            "bertkit.seq2seq.pad_token_id": str(model.pad_token_id)}
    encoder = export_onnx(model.encoder, out / ENCODER_FILE, opset=opset, metadata=meta)
    was_training = model.training
    model.eval()
    try:
        decoder = _export_step(model, out / DECODER_FILE, opset, meta)
    finally:
        model.train(was_training)
    return encoder, decoder


def _export_step(model: EncoderDecoderModel, path: Path, opset: int | None,
                 meta: Mapping[str, str]) -> Path:
    from bertkit.export.onnx import _quiet_exporter, _require_onnx, _save_atomically

    _require_onnx()
    config = model.config
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, config.decoder.vocab_size, (2, 5), generator=generator)
    source = torch.randn(2, 7, config.encoder.hidden_size, generator=generator)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[-1, 4:] = 0
    batch = torch.export.Dim("batch")
    dynamic = {"decoder_input_ids": {0: batch, 1: torch.export.Dim(
                   "target", max=config.decoder.max_position_embeddings)},
               "encoder_hidden_states": {0: batch, 1: torch.export.Dim(
                   "source", max=config.encoder.max_position_embeddings)},
               "encoder_attention_mask": {0: batch, 1: torch.export.Dim(
                   "source", max=config.encoder.max_position_embeddings)}}
    try:
        with torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(
                DecoderStepGraph(model).eval(), (tokens, source, mask), dynamo=True,
                input_names=list(STEP_INPUTS), output_names=["next_token_logits"],
                dynamic_shapes=dynamic, opset_version=opset, verbose=False)
    except Exception as err:  # the exporter raises many unrelated types
        raise UsageError(f"ONNX export of the decoder step failed (opset "
                         f"{opset or 'default'}): {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}") from err
    program.model.metadata_props.update({"bertkit.task": "seq2seq-decoder-step", **meta})
    weight_bytes = sum(p.numel() * p.element_size() for p in model.decoder.parameters())
    return _save_atomically(program, path, weight_bytes)


class OnnxSeq2Seq:
    """The two graphs on ONNX Runtime, and greedy generation through them (the same tokens
    as ``EncoderDecoderModel.generate(num_beams=1)``: each step's argmax, finished rows
    padded after their end token)."""

    def __init__(self, directory: str | Path, *, threads: int | None = None):
        directory = Path(directory)
        self.encoder = OnnxEncoder(directory / ENCODER_FILE, threads=threads)
        self.step = OnnxEncoder(directory / DECODER_FILE, threads=threads)
        meta = self.step.session.get_modelmeta().custom_metadata_map
        self.start_id = int(meta["bertkit.seq2seq.decoder_start_token_id"])
        self.eos_id = int(meta["bertkit.seq2seq.eos_token_id"])
        self.pad_id = int(meta["bertkit.seq2seq.pad_token_id"])

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.encoder({"input_ids": input_ids,
                             "attention_mask": attention_mask})["last_hidden_state"]

    def next_token_logits(self, tokens: np.ndarray, source: np.ndarray,
                          source_mask: np.ndarray) -> np.ndarray:
        feeds = {"decoder_input_ids": np.ascontiguousarray(tokens, dtype=np.int64),
                 "encoder_hidden_states": np.ascontiguousarray(source, dtype=np.float32),
                 "encoder_attention_mask": np.ascontiguousarray(source_mask, dtype=np.int64)}
        return self.step.session.run(["next_token_logits"], feeds)[0]

    def greedy(self, input_ids: Any, attention_mask: Any, max_new_tokens: int) -> np.ndarray:
        """Target ids (B, 1 + new tokens) starting with the decoder start token."""
        ids, mask = (np.asarray(t, dtype=np.int64) for t in (input_ids, attention_mask))
        source = self.encode(ids, mask)
        tokens = np.full((ids.shape[0], 1), self.start_id, dtype=np.int64)
        done = np.zeros(ids.shape[0], dtype=bool)
        for _ in range(max_new_tokens):
            chosen = self.next_token_logits(tokens, source, mask).argmax(axis=-1)
            chosen = np.where(done, self.pad_id, chosen)
            tokens = np.concatenate([tokens, chosen[:, None]], axis=1)
            done |= chosen == self.eos_id
            if done.all():
                break
        return tokens


@dataclass
class Seq2SeqParity:
    """The encoder's and the step's parity tables, and whether greedy decoding through the
    graphs gave ``model.generate``'s tokens."""

    encoder: ParityReport
    step: ParityReport
    greedy_identical: bool
    greedy_tokens: int
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.encoder.ok and self.step.ok and self.greedy_identical

    def table(self) -> str:
        return (f"encoder ({ENCODER_FILE}):\n{self.encoder.table()}\n"
                f"decoder step ({DECODER_FILE}):\n{self.step.table()}\n"
                f"greedy decoding through both graphs, {self.greedy_tokens} tokens: "
                f"{'token-identical' if self.greedy_identical else 'DIFFERENT'} to PyTorch")


@torch.no_grad()
def verify_seq2seq(directory: str | Path, model: EncoderDecoderModel, *, tokenizer: Any = None,
                   tolerance: float = DEFAULT_TOLERANCE, max_new_tokens: int = 8,
                   raise_on_failure: bool = True) -> Seq2SeqParity:
    """Run both graphs and the PyTorch model on the same inputs; compare (see module doc)."""
    runner = OnnxSeq2Seq(directory)
    model.eval()
    encoder = verify(runner.encoder, model.encoder, tokenizer=tokenizer, tolerance=tolerance,
                     raise_on_failure=False)
    sources = default_batches(model.config.encoder, tokenizer)["padded"]
    ids = sources["input_ids"]
    mask = sources["attention_mask"]
    states = model.encode(torch.from_numpy(ids), torch.from_numpy(mask))
    step = ParityReport(tolerance)
    generator = torch.Generator().manual_seed(3)
    for length in (1, 6):
        prefix = torch.randint(0, model.vocab_size, (ids.shape[0], length), generator=generator)
        prefix[:, 0] = model.start_token_id
        want, _ = model.decode(prefix, states, torch.from_numpy(mask), None)
        have = runner.next_token_logits(prefix.numpy(), states.numpy(), mask)
        delta = float(np.abs(have.astype(np.float64) - want.numpy().astype(np.float64)).max())
        step.rows.append((f"{ids.shape[0]}×{length} prefix, {ids.shape[1]} source tokens",
                          "next_token_logits", delta))
    want_ids = model.generate(torch.from_numpy(ids), torch.from_numpy(mask), num_beams=1,
                              max_new_tokens=max_new_tokens).numpy()
    have_ids = runner.greedy(ids, mask, max_new_tokens)
    report = Seq2SeqParity(encoder, step, bool(np.array_equal(want_ids, have_ids)),
                           int(want_ids.size))
    if raise_on_failure and not report.ok:
        raise ParityError(f"{directory}: ONNX Runtime differs from PyTorch beyond "
                          f"{tolerance:g}\n{report.table()}")
    return report
