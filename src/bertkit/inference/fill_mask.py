"""Fill-mask: the most likely tokens for every ``[MASK]`` in a text, as a masked-LM sees them.

Every mask of a text is predicted from the same input, with the other masks still masked (as
BERT was trained, and as the reference pipeline does); the predictions are not joint. Scores are
probabilities: a softmax over the whole vocabulary at the mask's position. Special tokens
([CLS], [SEP], [PAD], [MASK], [UNK]) are never proposed.

Results are given at three levels, because a WordPiece vocabulary predicts *pieces*:
``token`` is the piece (``##ing``), ``word`` the whole word it forms with the neighbouring
pieces (``playing``), ``sequence`` the text with this one mask filled; a text's ``filled`` has
every mask replaced by its best candidate.

Continuation pieces (``##s``) and whole-word blanks. ``transformers``' fill-mask pipeline ranks
the whole vocabulary and shows a ``##`` candidate as the piece (``token_str`` "##s"), but its
``sequence`` is ``tokenizer.decode``, which glues the piece to the word before the blank: "the
price of [MASK] rose" becomes "the price ofs rose". A blank that stands apart from the previous
word (whitespace, punctuation or the start of the text before it) asks for a word, and a
continuation piece there contradicts the text, so bertkit leaves ``##`` pieces out of such a
blank's candidates (as it leaves out special tokens); the scores stay probabilities over the
whole vocabulary, unrenormalised. A blank written against a word ("play[MASK]") continues it:
there ``##`` pieces are proposed and join that word (``playing``), as the text asks.

Shape legend: B batch, T tokens, H hidden, V vocabulary, M masks in the batch, K candidates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from bertkit._fileio import read_json
from bertkit.checkpoints.huggingface import (
    PICKLED,
    SAFETENSORS,
    SAFETENSORS_INDEX,
    read_weights,
)
from bertkit.errors import CheckpointError, InputError, UsageError
from bertkit.inference.engine import Engine, TextBatch, as_engine
from bertkit.model.pretrained import BertForMaskedLM
from bertkit.tokenization import Tokenizer

logger = logging.getLogger("bertkit")

MLM_PREFIX = "cls.predictions."
CONTINUATION = "##"


@dataclass(frozen=True)
class Candidate:
    """One proposal for one mask."""

    token: str          # the vocabulary piece, e.g. "paris" or "##ing"
    token_id: int
    score: float        # probability over the whole vocabulary
    word: str           # the whole word the piece forms with its neighbours, e.g. "playing"
    sequence: str       # the text with this mask (only) filled by the piece
    target: str | None = None  # the requested target word this piece scores (targets mode)


@dataclass(frozen=True)
class MaskPrediction:
    """The candidates for one ``[MASK]``, best first."""

    position: int                 # token index of the mask in the encoded text
    span: tuple[int, int]         # character span of the mask token in the text
    candidates: list[Candidate]


@dataclass(frozen=True)
class FillMaskResult:
    """All masks of one text."""

    text: str
    masks: list[MaskPrediction]
    filled: str                   # every mask replaced by its best candidate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------- loading


def checkpoint_tensor_names(path: str | Path) -> set[str]:
    """Names of a checkpoint directory's tensors, read from the header where the format allows
    (safetensors: no tensor is loaded), so a wrong checkpoint is refused before loading it."""
    path = Path(path)
    if (path / SAFETENSORS).is_file():
        try:
            with safe_open(str(path / SAFETENSORS), framework="pt") as handle:
                return set(handle.keys())
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path / SAFETENSORS}: not a readable safetensors file "
                                  f"({err})") from None
    if (path / SAFETENSORS_INDEX).is_file():
        return set(read_json(path / SAFETENSORS_INDEX).get("weight_map", {}))
    if (path / PICKLED).is_file() or path.is_file():
        return set(read_weights(path))
    raise CheckpointError(f"{path}: no weights found (looked for {SAFETENSORS}, "
                          f"{SAFETENSORS_INDEX}, {PICKLED})")


def require_mlm_checkpoint(path: str | Path) -> None:
    """Refuse a checkpoint without masked-LM weights (a bare ``BertModel``): loading it as
    ``BertForMaskedLM`` would give a randomly initialised head and meaningless predictions."""
    names = checkpoint_tensor_names(path)
    if not any(name.startswith(MLM_PREFIX) or f".{MLM_PREFIX}" in name for name in names):
        raise CheckpointError(
            f"{path}: the checkpoint has no masked-LM head (no {MLM_PREFIX}* weights; it holds "
            "an encoder only, e.g. a BertModel or sentence-embedding model); fill-mask needs a "
            "BertForMaskedLM or BertForPreTraining checkpoint")


def load_fill_mask(path: str | Path, **options: Any) -> Engine:
    """An :class:`Engine` around the checkpoint's masked-LM model (checked to have its head).

    Keyword arguments go to :meth:`Engine.from_pretrained` (``device``, ``dtype``, …).
    """
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{path}: not a model directory (expected a folder with config.json, "
                         "model.safetensors and a tokenizer)")
    require_mlm_checkpoint(path)
    return Engine.from_pretrained(path, model_class=BertForMaskedLM, **options)


def _mlm_parts(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The encoder and the MLM head of a BertForMaskedLM / BertForPreTraining."""
    bert, head = getattr(model, "bert", None), getattr(model, "mlm", None)
    if bert is None or head is None:
        raise UsageError(
            f"fill-mask needs a model with a masked-LM head (BertForMaskedLM or "
            f"BertForPreTraining); got {type(model).__name__}")
    return bert, head


# ---------------------------------------------------------------------------- predicting


def fill_mask(model: nn.Module | Engine, tokenizer: Tokenizer | None, texts: str | Sequence[str],
              top_k: int = 5, targets: Sequence[str] | None = None, *,
              batch_size: int | None = None, truncate: bool | None = None
              ) -> list[FillMaskResult]:
    """Top-``top_k`` tokens with probabilities for every ``[MASK]`` of every text.

    ``model`` is a BertForMaskedLM / BertForPreTraining (with ``tokenizer``) or an
    :class:`Engine` around one (then ``tokenizer`` may be ``None``). With ``targets`` only those
    words are scored and every target is returned, ranked (``top_k`` does not cut them). A
    target that the vocabulary splits into several pieces is scored by its **first piece** (as
    the reference pipeline does; a warning names it) — its probability is then that of the
    word's beginning, not of the whole word. A target that is unknown to the vocabulary is an
    error. A blank that stands apart from the word before it is never offered a ``##``
    continuation piece (see the module doc). Texts are batched by length; results come back in
    the order of ``texts``.
    """
    engine = as_engine(model, tokenizer, batch_size=batch_size, truncate=truncate)
    _mlm_parts(engine.model)
    tokenizer = engine.tokenizer
    mask_id = tokenizer.mask_token_id
    if mask_id is None:
        raise UsageError("the tokenizer has no mask token; fill-mask needs one "
                         f"({tokenizer.mask_token!r})")
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise UsageError(f"top_k={top_k!r}; expected a positive int")
    text_list = [texts] if isinstance(texts, str) else list(texts)
    rows = engine.encode(text_list, offsets=True)
    for index, row in enumerate(rows):
        if mask_id not in row["input_ids"]:
            raise InputError(f"text {index} has no {tokenizer.mask_token} token: "
                             f"{_preview(text_list[index])!r}; fill-mask predicts the token at "
                             f"each {tokenizer.mask_token}")
    target_ids, target_words = _target_ids(tokenizer, targets) if targets is not None else (
        None, None)
    special = sorted(set(tokenizer.all_special_ids))
    pieces = continuation_ids(tokenizer)
    excluded = torch.tensor(special, dtype=torch.long)                          # every blank
    excluded_at_word = torch.tensor(sorted(set(special) | set(pieces)), dtype=torch.long)
    whole_word = [_whole_word_blanks(text, row, mask_id)
                  for text, row in zip(text_list, rows, strict=True)]

    def step(batch: TextBatch) -> list[list[tuple[list[int], list[float]]]]:
        where = (batch.input_ids == mask_id).nonzero()                          # (M, 2)
        logits = mask_logits(engine.model, batch.input_ids, batch.attention_mask,
                             mask_id).float()                                    # (M, V)
        probs = logits.softmax(dim=-1)                                           # (M, V)
        # Which masks are whole-word blanks, in the row-major order of ``where``.
        at_word = [flag for index in batch.indices for flag in whole_word[index]]
        per_text: list[list[tuple[list[int], list[float]]]] = [[] for _ in batch.indices]
        for (row, _), mask_probs, word_blank in zip(where.tolist(), probs, at_word,
                                                    strict=True):
            per_text[row].append(_ranked(mask_probs, target_ids,
                                         excluded_at_word if word_blank else excluded, top_k))
        return per_text

    predictions = engine.map(rows, step)
    return [
        _assemble(tokenizer, text, row, preds, mask_id, target_words)
        for text, row, preds in zip(text_list, rows, predictions, strict=True)
    ]


def _ranked(probs: Tensor, target_ids: list[int] | None, excluded: Tensor,
            top_k: int) -> tuple[list[int], list[float]]:
    """One mask's candidates from its (V,) probabilities: the targets ranked (all of them), or
    the ``top_k`` most likely tokens outside ``excluded``."""
    if target_ids is not None:
        chosen = torch.tensor(target_ids, device=probs.device)
        scores, order = probs[chosen].sort(descending=True)                     # (targets,)
        return chosen[order].tolist(), scores.tolist()
    probs = probs.clone()
    probs[excluded.to(probs.device)] = -1.0  # below every probability: never chosen
    k = min(top_k, probs.shape[0] - excluded.numel())
    scores, ids = probs.topk(k)                                                  # (K,)
    return ids.tolist(), scores.tolist()


def continuation_ids(tokenizer: Tokenizer) -> list[int]:
    """Ids of the vocabulary's continuation pieces (``##…``)."""
    return sorted(index for token, index in tokenizer.get_vocab().items()
                  if token.startswith(CONTINUATION) and len(token) > len(CONTINUATION))


def _whole_word_blanks(text: str, row: dict[str, Any], mask_id: int) -> list[bool]:
    """Per ``[MASK]`` of an encoded text (in order): whether it is a whole-word blank. A mask
    continues the token before it only when that token ends where the mask starts and is
    another mask or ends in a letter or digit (BERT splits punctuation off as its own word);
    after [CLS], a space or punctuation the blank is a word of its own."""
    ids: list[int] = row["input_ids"]
    offsets: list[tuple[int, int]] = row["offset_mapping"]
    flags = []
    for position, token in enumerate(ids):
        if token != mask_id:
            continue
        before_start, before_end = offsets[position - 1] if position > 1 else (0, 0)
        touches = before_end > before_start and before_end == offsets[position][0]
        continues = touches and (ids[position - 1] == mask_id
                                 or text[before_end - 1:before_end].isalnum())
        flags.append(not continues)
    return flags


def _target_ids(tokenizer: Tokenizer, targets: Sequence[str]) -> tuple[list[int], dict[int, str]]:
    """Vocabulary ids to score for the target words (first piece of a multi-piece word)."""
    if isinstance(targets, str):
        targets = [targets]
    ids: list[int] = []
    words: dict[int, str] = {}
    for target in targets:
        if not isinstance(target, str) or not target.strip():
            raise UsageError(f"target {target!r}; expected a non-empty word")
        pieces = tokenizer(target.strip(), add_special_tokens=False)["input_ids"]
        if not pieces or pieces[0] == tokenizer.unk_token_id:
            raise UsageError(f"target {target!r} is not in the model's vocabulary (it "
                             f"tokenizes to {tokenizer.unk_token}); choose another word")
        if len(pieces) > 1:
            shown = tokenizer.convert_ids_to_tokens(pieces)
            logger.warning("target %r is %d word pieces %s; scoring its first piece %r only",
                           target, len(pieces), shown, shown[0])
        if pieces[0] not in words:
            ids.append(pieces[0])
            words[pieces[0]] = target.strip()
    return ids, words


def _assemble(tokenizer: Tokenizer, text: str, row: dict[str, Any],
              predictions: list[tuple[list[int], list[float]]], mask_id: int,
              target_words: dict[int, str] | None) -> FillMaskResult:
    """Turn ranked ids into pieces, whole words and filled sentences for one text."""
    ids: list[int] = row["input_ids"]
    offsets: list[tuple[int, int]] = row["offset_mapping"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    special = {0, len(ids) - 1}  # [CLS] and [SEP]: the template's tokens around a single text
    positions = [p for p, i in enumerate(ids) if i == mask_id]
    masks = []
    for position, (cand_ids, cand_scores) in zip(positions, predictions, strict=True):
        candidates = []
        for cand_id, score in zip(cand_ids, cand_scores, strict=True):
            piece = str(tokenizer.convert_ids_to_tokens(cand_id))
            candidates.append(Candidate(
                token=piece, token_id=cand_id, score=score,
                word=_whole_word(text, tokens, offsets, special, position, piece),
                sequence=_fill(text, offsets, [(position, piece)]),
                target=None if target_words is None else target_words[cand_id]))
        masks.append(MaskPrediction(position, tuple(offsets[position]), candidates))
    best = [(m.position, m.candidates[0].token) for m in masks if m.candidates]
    return FillMaskResult(text, masks, _fill(text, offsets, best))


def _whole_word(text: str, tokens: list[str], offsets: list[tuple[int, int]], special: set[int],
                position: int, piece: str) -> str:
    """The word ``piece`` forms at ``position`` with the pieces it continues and those that
    continue it (``##`` marks a piece that continues the previous one)."""
    start = position
    continues = piece.startswith(CONTINUATION)
    while continues and start - 1 not in special and start - 1 >= 0:
        start -= 1
        continues = tokens[start].startswith(CONTINUATION)
    end = position + 1
    while end < len(tokens) and end not in special and tokens[end].startswith(CONTINUATION):
        end += 1
    parts = []
    for index in range(start, end):
        parts.append(_surface(piece) if index == position
                     else text[offsets[index][0]:offsets[index][1]])
    return "".join(parts)


def _surface(piece: str) -> str:
    return piece[len(CONTINUATION):] if piece.startswith(CONTINUATION) else piece


def _fill(text: str, offsets: list[tuple[int, int]], fills: list[tuple[int, str]]) -> str:
    """``text`` with the mask at each token position replaced by a piece, right to left so the
    earlier character offsets stay valid. A ``##`` piece is only ever proposed for a blank
    written against a word, so dropping its ``##`` joins it to that word and nothing else."""
    out = text
    for position, piece in sorted(fills, reverse=True):
        start, end = offsets[position]
        out = out[:start] + _surface(piece) + out[end:]
    return out


def _preview(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---------------------------------------------------------------------------- output


def render(results: Sequence[FillMaskResult]) -> str:
    """A terminal view: each text, then per mask its ranked candidates."""
    lines: list[str] = []
    for index, result in enumerate(results):
        if index:
            lines.append("")
        lines.append(f"{result.text}")
        lines.append(f"  → {result.filled}")
        for number, mask in enumerate(result.masks, 1):
            lines.append(f"  mask {number} (characters {mask.span[0]}..{mask.span[1]}):")
            for rank, cand in enumerate(mask.candidates, 1):
                extra = f"  [target {cand.target!r}]" if cand.target is not None \
                    and cand.target != cand.token else ""
                word = f"  (word: {cand.word})" if cand.word != _surface(cand.token) else ""
                lines.append(f"    {rank:>2}. {cand.token:<16} {cand.score:8.4f}{word}{extra}")
    return "\n".join(lines)


def to_json(results: Sequence[FillMaskResult]) -> str:
    return json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2)


def mask_logits(model: nn.Module, input_ids: Tensor, attention_mask: Tensor,
                mask_id: int) -> Tensor:
    """(M, V) logits at the mask positions of a batch, in row-major order.

    The vocabulary projection (most of a small model's cost) runs on the M mask rows only, not
    on all B·T positions.
    """
    bert, head = _mlm_parts(model)
    hidden = bert(input_ids, attention_mask).last_hidden_state               # (B, T, H)
    where = (input_ids == mask_id).nonzero()                                 # (M, 2)
    return head(hidden[where[:, 0], where[:, 1]], bert.embeddings.word.weight)
