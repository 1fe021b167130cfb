"""A pre-LN checkpoint (``pre_layer_norm``) in ``transformers``: it has no such BERT (Megatron-BERT
is pre-LN but has no embedding LayerNorm), so what it can do is report the weights it cannot
use rather than compute another function in silence."""

from __future__ import annotations

import transformers

from bertkit.model.pretrained import BertForMaskedLM
from tiny import tiny_config


def test_transformers_sees_the_final_norm_it_cannot_run(tmp_path):
    BertForMaskedLM(tiny_config(53, pre_layer_norm=True)).save_pretrained(tmp_path)
    transformers.logging.set_verbosity_error()
    _, info = transformers.BertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert {"bert.encoder.final_layer_norm.weight",
            "bert.encoder.final_layer_norm.bias"} <= set(info["unexpected_keys"])
