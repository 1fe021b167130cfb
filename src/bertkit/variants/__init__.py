"""Model families as facts: presets and checkpoint name tables, one module per family."""

from bertkit.variants import albert, bert, distilbert, electra, roberta
from bertkit.variants.albert import ALBERT_NAMES
from bertkit.variants.bert import BERT_NAMES
from bertkit.variants.distilbert import DISTILBERT_NAMES
from bertkit.variants.electra import ELECTRA_NAMES
from bertkit.variants.roberta import ROBERTA_NAMES

NAME_TABLES = {table.model_type: table for table in (
    BERT_NAMES, ROBERTA_NAMES, DISTILBERT_NAMES, ALBERT_NAMES, ELECTRA_NAMES)}

PRESETS = {**bert.PRESETS, **roberta.PRESETS, **distilbert.PRESETS, **albert.PRESETS,
           **electra.PRESETS}
"""Every family's presets by name (``bertkit.variants.bert.PRESETS`` holds BERT's alone)."""

__all__ = ["ALBERT_NAMES", "BERT_NAMES", "DISTILBERT_NAMES", "ELECTRA_NAMES", "NAME_TABLES",
           "PRESETS", "ROBERTA_NAMES"]
