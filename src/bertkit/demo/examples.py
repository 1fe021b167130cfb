"""The demo's fill-mask examples, fixed in advance with the word each blank held, and where the
pretrained model ranks that word: a check on whether pretraining learned words, which a list
of top-5 guesses chosen after the run could not give."""

from __future__ import annotations

from typing import Any

from bertkit.inference.engine import Engine
from bertkit.inference.fill_mask import fill_mask

#: Fixed before any run (never picked after seeing the answers): texts in the pretraining
#: corpus' style (lowercase, no punctuation, numbers removed), each with the word a Reuters
#: writer would put in the blank. Most blanks are content words (outside the 100 most frequent
#: tokens), which a model that learned only function words cannot rank high; the report gives
#: the rank of the original word among the whole-word candidates.
FILL_MASK_EXAMPLES = (
    ("the company said its net [MASK] rose to mln dlrs", "profit"),
    ("the bank of [MASK] said it provided the money market with assistance", "england"),
    ("oil [MASK] rose sharply after the opec meeting", "prices"),
    ("the company said it agreed to [MASK] the remaining shares", "acquire"),
    ("shareholders will vote on the [MASK] at the annual meeting", "merger"),
    ("the central bank raised its discount [MASK] by half a point", "rate"),
    ("wheat and corn [MASK] fell on the chicago board of trade", "futures"),
    ("the [MASK] said it expects earnings to improve this year", "company"),
)
FILL_MASK_TEXTS = tuple(text for text, _ in FILL_MASK_EXAMPLES)


def fill_mask_examples(engine: Engine, top_k: int = 5) -> list[dict[str, Any]]:
    """The top ``top_k`` of each :data:`FILL_MASK_EXAMPLES` text, and where the original word
    ranks among all whole-word candidates (1 = first; a word of several pieces is ranked by
    its first piece, as fill-mask's targets are; ``None`` if the vocabulary lacks it)."""
    tokenizer = engine.tokenizer
    every = fill_mask(engine, None, list(FILL_MASK_TEXTS), top_k=tokenizer.vocab_size)
    rows = []
    for (text, answer), result in zip(FILL_MASK_EXAMPLES, every, strict=True):
        ranked = result.masks[0].candidates
        pieces = tokenizer.tokenize(answer)
        rank = next((index + 1 for index, c in enumerate(ranked) if c.token == pieces[0]), None)
        rows.append({"text": text, "filled": result.filled, "answer": answer,
                     "answer_pieces": pieces, "answer_rank": rank,
                     "candidates": [[c.word, c.score] for c in ranked[:top_k]]})
    return rows
