"""Model families as facts: presets and checkpoint name tables, one module per family."""

from bertkit.variants.bert import BERT_NAMES, PRESETS

NAME_TABLES = {BERT_NAMES.model_type: BERT_NAMES}

__all__ = ["BERT_NAMES", "NAME_TABLES", "PRESETS"]
