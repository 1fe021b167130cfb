"""The demo's inspection step: fill-mask with the model pretrained here; sentence similarity
and an attention map with all-MiniLM-L6-v2."""

from __future__ import annotations

from bertkit.demo.data_steps import ENCODER
from bertkit.demo.examples import fill_mask_examples
from bertkit.demo.quickstart import SENTENCES, embed_sentences
from bertkit.demo.run import DemoRun
from bertkit.inference.attention_maps import (
    attention_maps,
    plot_attention,
    viz_available,
    write_attention_html,
)
from bertkit.inference.engine import Engine
from bertkit.inference.fill_mask import load_fill_mask
from bertkit.resources.artifacts import fetch

ATTENTION_TEXT = "The cat sat on the mat because it was tired."


def showcase(run: DemoRun) -> str:
    """Fill-mask with the pretrained model; similarity and attention with MiniLM."""
    engine = load_fill_mask(run.out / "pretrain", device="cpu")
    run.summary["fill_mask"] = fill_mask_examples(engine)
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
    examples = run.summary["fill_mask"]
    best = examples[0]["candidates"][0]
    top5 = sum(1 for e in examples if e["answer_rank"] is not None and e["answer_rank"] <= 5)
    return (f"fill-mask on {len(examples)} texts (first: {best[0]!r} {best[1]:.3f}; original "
            f"word in the top 5 for {top5}); "
            f"similarity of {len(SENTENCES)} sentences; attention map: layer {layer}, head "
            f"{head}, where 'it' attends to 'cat' ({weight:.2f}) most above the other tokens")
