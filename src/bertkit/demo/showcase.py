"""The demo's inspection step: fill-mask with the model pretrained here; sentence similarity
and an attention map with all-MiniLM-L6-v2."""

from __future__ import annotations

from bertkit.demo.data_steps import ENCODER
from bertkit.demo.quickstart import SENTENCES, embed_sentences
from bertkit.demo.run import DemoRun
from bertkit.inference.attention_maps import (
    attention_maps,
    plot_attention,
    viz_available,
    write_attention_html,
)
from bertkit.inference.engine import Engine
from bertkit.inference.fill_mask import fill_mask, load_fill_mask
from bertkit.resources.artifacts import fetch

#: In the pretraining corpus' style: lowercase, no punctuation, numbers removed.
FILL_MASK_TEXTS = (
    "the company said its net [MASK] rose to mln dlrs",
    "the bank of [MASK] said it provided the money market with assistance",
    "oil [MASK] rose sharply after the opec meeting",
    "the company said it agreed to [MASK] the remaining shares",
    "shareholders will vote on the [MASK] at the annual meeting",
)
ATTENTION_TEXT = "The cat sat on the mat because it was tired."


def showcase(run: DemoRun) -> str:
    """Fill-mask with the pretrained model; similarity and attention with MiniLM."""
    engine = load_fill_mask(run.out / "pretrain", device="cpu")
    results = fill_mask(engine, None, list(FILL_MASK_TEXTS), top_k=5)
    run.summary["fill_mask"] = [
        {"text": r.text, "filled": r.filled,
         "candidates": [[c.word, c.score] for c in r.masks[0].candidates]} for r in results]
    similarity = embed_sentences(SENTENCES, quiet=True)
    run.summary["similarity"] = {"sentences": list(similarity.sentences),
                                 "matrix": similarity.similarity.tolist()}
    encoder = Engine.from_pretrained(fetch(ENCODER, quiet=True), device="cpu")
    maps = attention_maps(encoder, None, ATTENTION_TEXT)
    # The head where "it" attends to "cat" most *beyond* what the other tokens give "cat" (a
    # head where every token looks at "cat" says nothing about "it").
    source, target = maps.tokens.index("it"), maps.tokens.index("cat")
    others = [q for q in range(len(maps.tokens)) if q != source]
    lift, layer, head = max(
        (float(probs[h, source, target] - probs[h, others, target].mean()), layer, h)
        for layer, probs in maps.probabilities.items() for h in range(maps.num_heads))
    weight = float(maps.head(layer, head)[source, target])
    if viz_available():  # without matplotlib the report says which extra draws figures
        plot_attention(maps, layer, head, run.out / "attention.png")
    write_attention_html(maps, run.out / "attention.html",
                         title="all-MiniLM-L6-v2 attention — bertkit demo", layer=layer, head=head)
    run.summary["attention"] = {"text": ATTENTION_TEXT, "tokens": maps.tokens, "layer": layer,
                                "head": head, "it_to_cat": weight, "lift": lift}
    best = run.summary["fill_mask"][0]["candidates"][0]
    return (f"fill-mask on {len(results)} texts (first: {best[0]!r} {best[1]:.3f}); "
            f"similarity of {len(SENTENCES)} sentences; attention map: layer {layer}, head "
            f"{head}, where 'it' attends to 'cat' ({weight:.2f}) most above the other tokens")
