"""Tests for `POST /v1/generate`: an encoder–decoder served through the dynamic batcher."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("bertkit.model.encoder_decoder",
                    reason="EncoderDecoderModel (branch h-decoder) is not merged yet")
from fastapi.testclient import TestClient

from bertkit.runs.seq2seq import build_seq2seq_model
from bertkit.server import ServedModel, create_app
from bertkit.tasks.translation import translate
from bertkit.tokenization import Tokenizer


@pytest.fixture(scope="module")
def seq2seq_dir(workspace, tmp_path_factory):
    tokenizer = Tokenizer.from_pretrained(workspace["bert"])
    torch.manual_seed(0)
    model, _ = build_seq2seq_model(workspace["bert"], tokenizer=tokenizer)
    out = tmp_path_factory.mktemp("served")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_generate_answers_what_the_library_translates(seq2seq_dir):
    served = ServedModel.load("mt", seq2seq_dir, device="cpu")
    assert served.task == "generate" and served.endpoints == ("generate",)
    texts = ["eins zwei", "drei", "vier fünf sechs"]
    expected = translate(served.seq2seq.model, served.tokenizer, texts, max_new_tokens=5)
    with TestClient(create_app([served])) as http:
        answer = http.post("/v1/generate", json={"texts": texts, "max_new_tokens": 5,
                                                 "id": "r1"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["id"] == "r1" and [r["text"] for r in body["results"]] == expected
        too_long = http.post("/v1/generate", json={"texts": ["eins"], "max_new_tokens": 99})
        assert too_long.status_code == 422
        assert too_long.json()["error"]["field"] == "max_new_tokens"
        beams = http.post("/v1/generate", json={"texts": ["eins"], "num_beams": 0})
        assert beams.status_code == 422 and beams.json()["error"]["field"] == "num_beams"
        empty = http.post("/v1/generate", json={"texts": ["  "]})
        assert empty.status_code == 422 and empty.json()["error"]["field"] == "texts[0]"
        assert http.post("/v1/sentence-embeddings", json={"texts": ["eins"]}).status_code == 404
