"""The parity harness every family's tests share: inputs, labels for each head, and the
comparison of every output two models produced.

Class names are read by role (the part after the family prefix: ``ForMaskedLM``), so one
harness serves ``BertForMaskedLM`` and ``AlbertForMaskedLM`` alike.
"""

from __future__ import annotations

import re

import torch

TOLERANCE = 1e-5

OUTPUT_FIELDS = ("last_hidden_state", "pooler_output", "logits", "prediction_logits",
                 "seq_relationship_logits", "sop_logits", "start_logits", "end_logits", "loss")


def role(class_name: str) -> str:
    """``RobertaForMaskedLM`` → ``ForMaskedLM``; ``DistilBertModel`` → ``Model``."""
    return re.sub(r"^(Bert|Roberta|DistilBert|Albert|Electra)", "", class_name)


def make_inputs(config: dict, class_name: str, seed: int, *,
                segments: bool = True) -> dict[str, torch.Tensor]:
    """Three rows, two of them padded; padded positions hold the pad id, as a tokenizer's
    would (RoBERTa derives its position ids from them)."""
    gen = torch.Generator().manual_seed(seed)
    batch, length = 3, 13
    ids = torch.randint(0, config["vocab_size"], (batch, length), generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, 9:] = 0
    mask[2, 4:] = 0
    ids = ids.masked_fill(mask == 0, config.get("pad_token_id", 0))
    inputs = {"input_ids": ids, "attention_mask": mask}
    if segments:
        inputs["token_type_ids"] = torch.randint(0, config.get("type_vocab_size", 2),
                                                 (batch, length), generator=gen)
    if role(class_name) == "ForMultipleChoice":
        return {k: v.unsqueeze(0) for k, v in inputs.items()}          # one question, 3 choices
    return inputs


def make_labels(config: dict, class_name: str, inputs: dict,
                seed: int) -> dict[str, torch.Tensor]:
    kind = role(class_name)
    if kind == "ForMultipleChoice":
        return {"labels": torch.tensor([2])}                            # the third choice
    gen = torch.Generator().manual_seed(seed + 1)
    batch, length = inputs["input_ids"].shape
    mlm = torch.full((batch, length), -100)
    mlm[:, 1:4] = torch.randint(0, config["vocab_size"], (batch, 3), generator=gen)
    pair = torch.randint(0, 2, (batch,), generator=gen)
    if kind == "ForPreTraining" and class_name.startswith("Electra"):   # replaced or not
        return {"labels": torch.randint(0, 2, (batch, length), generator=gen)}
    pretraining = ({"labels": mlm, "sentence_order_label": pair}
                   if class_name.startswith("Albert")
                   else {"labels": mlm, "next_sentence_label": pair})
    return {
        "Model": {},
        "ForPreTraining": pretraining,
        "ForMaskedLM": {"labels": mlm},
        "ForNextSentencePrediction": {"labels": pair},
        "ForSequenceClassification": {"labels": pair},
        "ForTokenClassification": {"labels": torch.where(mlm >= 0, mlm % 2, mlm)},
        "ForQuestionAnswering": {"start_positions": torch.tensor([1, 2, 40]),
                                 "end_positions": torch.tensor([3, 2, 41])},
    }[kind]


def compare(reference, ours, *, with_internals: bool) -> float:
    """Largest absolute difference over every output both models produced."""
    worst = 0.0
    for field in OUTPUT_FIELDS:
        expected, actual = getattr(reference, field, None), getattr(ours, field, None)
        if expected is None:
            continue
        assert actual is not None, f"bertkit gave no {field}"
        assert actual.shape == expected.shape, field
        worst = max(worst, (expected - actual).abs().max().item())
    if with_internals:
        for group in ("hidden_states", "attentions"):
            expected, actual = getattr(reference, group), getattr(ours, group)
            assert len(expected) == len(actual), group
            for a, b in zip(expected, actual, strict=True):
                worst = max(worst, (a - b).abs().max().item())
    return worst
