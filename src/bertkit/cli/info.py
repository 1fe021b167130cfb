"""``bertkit info``: what a checkpoint directory holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.checkpoints.huggingface import read_weights
from bertkit.cli.command import add_command
from bertkit.model.config import BertConfig


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "info", run)
    parser.add_argument("model", type=Path, help="a Hugging Face or bertkit model directory")


def run(args: argparse.Namespace) -> int:
    """``bertkit info``: describe a model directory."""
    config = BertConfig.from_pretrained(args.model)
    weights = read_weights(args.model)
    parameters = sum(t.numel() for t in weights.values())
    architectures = ", ".join(config.extra.get("architectures", [])) or "unknown"
    print(f"model:        {args.model}")
    print(f"family:       {config.model_type} ({architectures})")
    print(f"layers:       {config.num_hidden_layers} × hidden {config.hidden_size}, "
          f"{config.num_attention_heads} heads, feed-forward {config.intermediate_size}")
    print(f"vocabulary:   {config.vocab_size}, positions {config.max_position_embeddings}")
    print(f"tensors:      {len(weights)} ({parameters:,} values)")
    if config.id2label:
        print(f"labels:       {', '.join(config.id2label.values())}")
    return 0
