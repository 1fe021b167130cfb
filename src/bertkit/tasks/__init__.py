"""Fine-tuning tasks: classification, token classification (NER), extractive QA, and metrics.

Tasks sit above the model and heads: they own the losses and the metrics (design principle 5),
so a head stays a pure "hidden states in, logits out" module. Submodules are imported directly
(``from bertkit.tasks.metrics import entity_scores``); nothing is re-exported here yet, so the
public surface is decided once, in ``bertkit/__init__.py``.
"""
