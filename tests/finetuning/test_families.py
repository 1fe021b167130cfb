"""Every family fine-tunes through the one fine-tuning path (issue 6, item 5): a tiny ALBERT,
ELECTRA-discriminator, RoBERTa and DistilBERT checkpoint each become a classifier of their own
family, and the run directory loads back for prediction as that family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bertkit.data.readers import TextExample
from bertkit.model.pretrained import (
    AlbertModel,
    BertModel,
    DistilBertModel,
    ElectraForPreTraining,
    RobertaModel,
)
from bertkit.runs.finetune import FinetuneConfig, finetune_classifier
from bertkit.tasks.predictor import Predictor
from tiny import tiny_config, word_tokenizer

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "movie", "film", "the", "was"]

FAMILIES = {
    "albert": (AlbertModel, {"model_type": "albert", "embedding_size": 16}),
    "electra": (ElectraForPreTraining, {"model_type": "electra", "embedding_size": 16}),
    "roberta": (RobertaModel, {"model_type": "roberta", "type_vocab_size": 1}),
    "distilbert": (DistilBertModel, {"model_type": "distilbert", "type_vocab_size": 0}),
}


def examples() -> list[TextExample]:
    texts = [("the movie was good", "pos"), ("the film was great", "pos"),
             ("the movie was awful", "neg"), ("the film was poor", "neg"),
             ("the film was fine", "pos"), ("the movie was bad", "neg")]
    return [TextExample(text=text, label=label) for text, label in texts]


def finetuned_run(cls: type, overrides: dict, tmp_path: Path) -> Path:
    """A tiny random ``cls`` checkpoint with a word tokenizer, fine-tuned for two steps."""
    tokenizer = word_tokenizer(tmp_path, WORDS, max_length=16)
    torch.manual_seed(0)
    base = tmp_path / "base"
    cls(tiny_config(len(tokenizer), **overrides)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    data = examples()
    result = finetune_classifier(base, "train", "eval", tmp_path / "run",
                                 config=FinetuneConfig(max_steps=2, batch_size=4, max_length=16,
                                                       device="cpu"),
                                 train_examples=data, eval_examples=data)
    return result.output_dir


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_fine_tunes_and_predicts_as_itself(family: str, tmp_path: Path) -> None:
    cls, overrides = FAMILIES[family]
    predictor = Predictor.load("classify", finetuned_run(cls, overrides, tmp_path),
                               device="cpu")
    assert predictor.model.config.model_type == family
    assert type(predictor.model).__name__.lower().startswith(family)
    assert set(predictor.model.config.label2id) == {"pos", "neg"}


def test_bert_still_loads_as_bert(tmp_path: Path) -> None:
    predictor = Predictor.load("classify", finetuned_run(BertModel, {}, tmp_path), device="cpu")
    assert type(predictor.model).__name__ == "BertForSequenceClassification"
