"""Inference tools on a trained model: fill-mask, embeddings & similarity, attention maps.

All of them run through :class:`~bertkit.inference.engine.Engine` (load once, length-sorted
batches, caller's order restored, no silent truncation).
"""
