"""``bertkit predict classify|ner|qa`` (JSONL out) and ``bertkit evaluate classify|ner|qa``
(metrics JSON out): argument parsing only; the work is in :mod:`bertkit.tasks.evaluation`.

``INPUT`` ``-`` reads stdin: for classify and ner one raw text per line (NER splits words at
whitespace), for qa a SQuAD JSON document. A file input keeps its format (table, CoNLL, SQuAD).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bertkit._fileio import write_json
from bertkit.cli import numbers
from bertkit.cli.options import quantize_option
from bertkit.errors import DataFormatError
from bertkit.tasks.evaluation import evaluate, predict
from bertkit.tasks.registry import FINETUNED, finetuned_spec


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=FINETUNED)
    parser.add_argument("--model", type=Path, required=True,
                        help="fine-tuned model (a `bertkit finetune` run directory)")
    parser.add_argument("input", metavar="INPUT", help="data file, or '-' for stdin")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE",
                        help="write here (atomically) instead of stdout")
    parser.add_argument("--text-column", default=None,
                        help="default: the column the model was trained on")
    parser.add_argument("--text-pair-column", default=None)
    parser.add_argument("--batch-size", type=numbers.positive, default=32)
    parser.add_argument("--max-length", type=numbers.positive, default=None,
                        help="tokens per window (default: the training run's)")
    parser.add_argument("--device", default="auto")
    quantize_option(parser)


def register(subcommands: argparse._SubParsersAction) -> None:
    pred = subcommands.add_parser("predict", help="predictions of a fine-tuned model (JSONL)",
                                  description=__doc__)
    _options(pred)
    pred.set_defaults(handler=run_predict)
    ev = subcommands.add_parser("evaluate", help="the task's metrics of a fine-tuned model",
                                description=__doc__)
    _options(ev)
    ev.add_argument("--label-column", default=None,
                    help="default: the column the model was trained on")
    ev.set_defaults(handler=run_evaluate)


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options of evaluate/predict; the column names matter to classification only
    (the other tasks' files name no columns)."""
    return {"batch_size": args.batch_size, "device": args.device, "quantize": args.quantize,
            "max_length": args.max_length, "text_column": args.text_column,
            "text_pair_column": args.text_pair_column,
            "label_column": getattr(args, "label_column", None)}


def _reads_texts(args: argparse.Namespace) -> bool:
    """Whether ``-`` means one raw text per line (else a document such as SQuAD JSON)."""
    return args.input == "-" and finetuned_spec(args.task).reads_texts


def _stdin_file(directory: str) -> Path:
    """stdin saved to a file the task's reader understands (a task that takes no raw texts
    reads a JSON document: SQuAD for qa)."""
    data = sys.stdin.read()
    if not data.strip():
        raise DataFormatError("stdin is empty; expected input text", "<stdin>")
    path = Path(directory) / "stdin.json"
    path.write_text(data, encoding="utf-8")
    return path


def run_predict(args: argparse.Namespace) -> int:
    options = _read_options(args)
    with tempfile.TemporaryDirectory() as tmp:
        if _reads_texts(args):
            texts = [line for line in sys.stdin.read().splitlines() if line.strip()]
            if not texts:
                raise DataFormatError("stdin is empty; expected one text per line", "<stdin>")
            records = predict(args.task, args.model, texts=texts, output=args.output,
                              **options)
        else:
            source = _stdin_file(tmp) if args.input == "-" else Path(args.input)
            if not source.exists():
                raise DataFormatError("file not found", source)
            records = predict(args.task, args.model, source, output=args.output, **options)
    if args.output is None:
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    options = _read_options(args)
    with tempfile.TemporaryDirectory() as tmp:
        if _reads_texts(args):
            raise DataFormatError("evaluation needs a labelled file (table or CoNLL), not "
                                  "stdin text", "<stdin>")
        source = _stdin_file(tmp) if args.input == "-" else Path(args.input)
        metrics = evaluate(args.task, args.model, source, **options)
    if args.output is not None:
        write_json(args.output, metrics)
    else:
        print(json.dumps(metrics, ensure_ascii=False))
    return 0
