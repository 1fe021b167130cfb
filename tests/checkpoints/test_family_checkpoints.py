"""Family checkpoints: a checkpoint of one family is refused by another family's class, naming
both; shared ALBERT layers are stored once; each family writes its own config keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import bertkit.model.pretrained as bk
from bertkit.errors import CheckpointError
from bertkit.model import BertConfig

SMALL = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=24, max_position_embeddings=20)
CONFIGS = {
    "bert": BertConfig(**SMALL),
    "roberta": BertConfig(**SMALL, model_type="roberta", pad_token_id=1, type_vocab_size=1),
    "distilbert": BertConfig(**SMALL, model_type="distilbert", type_vocab_size=0),
    "albert": BertConfig(**SMALL, model_type="albert", embedding_size=8),
    "electra": BertConfig(**SMALL, model_type="electra", embedding_size=8),
}


@pytest.mark.parametrize(("saved", "loader", "suggestion"), [
    ("roberta", bk.BertModel, "RobertaModel"),
    ("bert", bk.AlbertModel, "BertModel"),
    ("distilbert", bk.ElectraForMaskedLM, "DistilBertForMaskedLM"),
    ("electra", bk.RobertaForSequenceClassification, "ElectraForSequenceClassification"),
])
def test_a_checkpoint_of_another_family_is_refused_naming_both(tmp_path: Path, saved: str,
                                                               loader, suggestion: str):
    bk.BertModel.for_family(saved)(CONFIGS[saved]).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=rf"a '{saved}' checkpoint cannot be loaded as "
                                              rf"{loader.__name__} \(a '{loader.model_type}' "
                                              rf"model\); use {suggestion}"):
        loader.from_pretrained(tmp_path)


def test_albert_stores_each_shared_layer_once_and_reloads(tmp_path: Path):
    config = BertConfig(**dict(SMALL, num_hidden_layers=4), model_type="albert",
                        embedding_size=8, num_hidden_groups=2)
    torch.manual_seed(0)
    model = bk.AlbertForMaskedLM(config).eval()
    model.save_pretrained(tmp_path)
    names = set(load_file(tmp_path / "model.safetensors"))
    groups = {n.split(".")[3] for n in names if ".albert_layer_groups." in n}
    assert groups == {"0", "1"}
    assert not any(".layers." in n for n in names)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["num_hidden_groups"] == 2 and saved["embedding_size"] == 8
    reloaded = bk.AlbertForMaskedLM.from_pretrained(tmp_path)
    ids = torch.randint(1, 50, (2, 6))
    torch.testing.assert_close(reloaded(ids).logits, model(ids).logits)
    # depth steps 0-1 run group 0, steps 2-3 group 1
    assert reloaded.bert.layers[1] is reloaded.bert.layers[0]
    assert reloaded.bert.layers[2] is not reloaded.bert.layers[0]
