"""The core forward pass has no host synchronisation: ``torch.compile(fullgraph=True)`` takes
each public class whole (a graph break would raise), and the compiled model computes what
the eager one does."""

from __future__ import annotations

import pytest
import torch

from bertkit.model.pretrained import (
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    PreTrainedModel,
)
from tiny import tiny_config


@pytest.mark.parametrize("model_class", [BertModel, BertForMaskedLM,
                                         BertForSequenceClassification])
def test_fullgraph_compile_matches_eager(model_class: type[PreTrainedModel]):
    torch.manual_seed(0)
    model = model_class(tiny_config(60, num_labels=3)).eval()
    ids = torch.randint(5, 60, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        eager = model(ids, mask)[0]
        graphed = compiled(ids, mask)[0]
    torch.testing.assert_close(graphed, eager, atol=1e-5, rtol=0)
