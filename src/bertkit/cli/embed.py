"""``bertkit embed`` (vectors of a file of texts) and ``bertkit similar`` (semantic search)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from bertkit.cli.options import quantize_option
from bertkit.errors import UsageError
from bertkit.inference.embedding_files import (
    output_format,
    read_texts,
    save_sentence_embeddings,
    save_token_embeddings,
)
from bertkit.inference.embeddings import (
    POOLINGS,
    parse_layers,
    sentence_embeddings,
    similar,
    token_embeddings,
)
from bertkit.inference.engine import ENGINE_DTYPES, Engine


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="texts per batch; texts are sorted by length first (default 32)")
    parser.add_argument("--dtype", choices=sorted(ENGINE_DTYPES), default="float32",
                        help="bfloat16 casts the weights: faster on GPUs and on CPUs with "
                             "native bf16 (AVX512-BF16/AMX), slower on others; vectors move "
                             "(cosine to float32 ≈ 0.9998 for MiniLM); default float32")
    parser.add_argument("--force-dtype", action="store_true",
                        help="run --dtype bfloat16 even on a CPU without bf16 instructions, "
                             "where it is several times slower than float32 (refused "
                             "without this flag)")
    quantize_option(parser)
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:1 … (default: cuda when available)")
    parser.add_argument("--truncate", action="store_true",
                        help="cut texts longer than the model to its length (default: such "
                             "texts are embedded whole, through sliding windows)")


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "embed", help="sentence or token vectors of a file of texts",
        description="Embed one text per line (blank lines are skipped; JSONL and safetensors "
                    "outputs record each text's line number). Output format by extension: "
                    ".npy, .jsonl, .safetensors.")
    parser.add_argument("--input", default="-", metavar="FILE",
                        help="text file, one text per line (default '-': stdin)")
    parser.add_argument("--output", type=Path, required=True, metavar="OUT",
                        help="OUT.npy | OUT.jsonl | OUT.safetensors")
    parser.add_argument("--pooling", choices=[*POOLINGS, "none"], default="mean",
                        help="sentence vector by mean / cls / max over real tokens, or 'none' "
                             "for per-token vectors (default mean)")
    parser.add_argument("--layers", default="-1", metavar="L1,L2",
                        help="hidden layers to read, e.g. -1,-2,-3,-4 (0 = embedding output; "
                             "default -1, the last layer)")
    parser.add_argument("--normalize", action="store_true",
                        help="L2-normalise sentence vectors (dot product = cosine)")
    _model_options(parser)
    # argparse reads "-1,-2" as an unknown option (only "-1" looks like a number to it); let
    # this parser treat comma-separated negative integers as values, so --layers -1,-2 works.
    parser._negative_number_matcher = re.compile(r"^-\d+(,-?\d+)*$|^-\d*\.\d+$")
    parser.set_defaults(handler=run_embed)

    search = subcommands.add_parser(
        "similar", help="the texts of a corpus closest in meaning to a query",
        description="Cosine top-k semantic search: embeds the corpus (one text per line) and "
                    "each query, prints the nearest corpus lines.")
    search.add_argument("queries", nargs="+", metavar="QUERY")
    search.add_argument("--corpus", required=True, metavar="FILE",
                        help="text file, one text per line ('-' for stdin)")
    search.add_argument("--top-k", type=int, default=5, help="matches per query (default 5)")
    search.add_argument("--pooling", choices=POOLINGS, default="mean")
    search.add_argument("--json", action="store_true", help="print JSON")
    _model_options(search)
    search.set_defaults(handler=run_similar)


def _engine(args: argparse.Namespace) -> Engine:
    return Engine.from_pretrained(args.model, device=args.device, dtype=args.dtype,
                                  quantize=args.quantize, force_dtype=args.force_dtype,
                                  batch_size=args.batch_size, truncate=args.truncate)


def run_embed(args: argparse.Namespace) -> int:
    # Mistakes in the arguments fail before the model loads.
    if output_format(args.output) == ".npy" and args.pooling == "none":
        raise UsageError(f"--output {args.output}: per-token vectors differ in length per "
                         "text and do not fit one .npy array; write .jsonl or .safetensors, "
                         "or pool them (--pooling mean|cls|max)")
    layers = parse_layers(args.layers)
    if args.pooling == "none" and args.normalize:
        raise UsageError("--normalize applies to sentence vectors; drop it or choose "
                         "--pooling mean|cls|max")
    source = read_texts(args.input)
    engine = _engine(args)
    started = time.perf_counter()
    metadata = {"model": str(args.model), "pooling": args.pooling, "layers": layers,
                "normalize": args.normalize, "dtype": args.dtype,
                "quantize": args.quantize}
    if args.pooling == "none":
        items = token_embeddings(engine, None, source.texts, layers=layers)
        save_token_embeddings(args.output, items, texts=source.texts, lines=source.lines,
                              metadata=metadata)
        shape = f"{sum(len(i.tokens) for i in items)} tokens × {len(layers)} layers"
    else:
        vectors = sentence_embeddings(engine, None, source.texts, pooling=args.pooling,
                                      layers=layers, normalize=args.normalize)
        save_sentence_embeddings(args.output, vectors, texts=source.texts, lines=source.lines,
                                 metadata=metadata)
        shape = " × ".join(str(n) for n in vectors.shape)
    seconds = time.perf_counter() - started
    blank = source.skipped_blank
    skipped = f" ({blank} blank line{'s' * (blank != 1)} skipped)" if blank else ""
    print(f"embedded {len(source.texts)} texts from {source.source}{skipped} in "
          f"{seconds:.2f} s → {args.output} ({shape})", file=sys.stderr)
    return 0


def run_similar(args: argparse.Namespace) -> int:
    corpus = read_texts(args.corpus)
    engine = _engine(args)
    results = similar(engine, None, args.queries, corpus.texts, top_k=args.top_k,
                      pooling=args.pooling)
    if args.json:
        print(json.dumps([
            {"query": query, "matches": [{"line": corpus.lines[m.index], "score": m.score,
                                          "text": m.text} for m in matches]}
            for query, matches in zip(args.queries, results, strict=True)],
            ensure_ascii=False, indent=2))
        return 0
    for number, (query, matches) in enumerate(zip(args.queries, results, strict=True)):
        if number:
            print()
        print(f"query: {query}")
        for rank, match in enumerate(matches, 1):
            print(f"  {rank:>2}. {match.score:.4f}  line {corpus.lines[match.index]:>5}  "
                  f"{match.text}")
    return 0
