"""``bertkit embed`` (vectors of a file of texts) and ``bertkit similar`` (semantic search)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.command import add_command
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
    parser.add_argument("--batch-size", type=numbers.positive, default=32,
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
    parser = add_command(subcommands, "embed", run_embed)
    parser.add_argument("--input", default="-", metavar="FILE",
                        help="text file, one text per line (default '-': stdin)")
    parser.add_argument("--output", type=Path, required=True, metavar="OUT",
                        help="OUT.npy | OUT.jsonl | OUT.safetensors; with --shard-size or "
                             "--engine ray a folder")
    parser.add_argument("--shard-size", type=numbers.positive, default=None, metavar="N",
                        help="stream the file N texts at a time into OUT/shard-*.safetensors "
                             "(bounded memory; a rerun resumes; under torchrun each rank "
                             "takes every WORLD_SIZE-th shard)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="ray: a Ray Data job (actor pool, one model per worker) writing "
                             "Parquet into OUT (needs bertkit[ray]); default local")
    parser.add_argument("--workers", type=numbers.positive, default=1,
                        help="--engine ray: model actors in the pool (default 1)")
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

    search = add_command(subcommands, "similar", run_similar)
    search.add_argument("queries", nargs="+", metavar="QUERY")
    search.add_argument("--corpus", required=True, metavar="FILE",
                        help="text file, one text per line ('-' for stdin)")
    search.add_argument("--top-k", type=numbers.positive, default=5,
                        help="matches per query (default 5)")
    search.add_argument("--pooling", choices=POOLINGS, default="mean")
    search.add_argument("--json", action="store_true", help="print JSON")
    _model_options(search)


def _engine(args: argparse.Namespace) -> Engine:
    return Engine.from_pretrained(args.model, device=args.device, dtype=args.dtype,
                                  quantize=args.quantize, force_dtype=args.force_dtype,
                                  batch_size=args.batch_size, truncate=args.truncate)


def run_embed(args: argparse.Namespace) -> int:
    """``bertkit embed``: sentence or token vectors of a file of texts.

    Embed one text per line (blank lines are skipped; JSONL and safetensors outputs record each
    text's line number). Output format by extension: .npy, .jsonl, .safetensors.
    """
    # Mistakes in the arguments fail before the model loads.
    layers = parse_layers(args.layers)
    metadata = {"model": str(args.model), "pooling": args.pooling, "layers": layers,
                "normalize": args.normalize, "dtype": args.dtype, "quantize": args.quantize}
    if args.engine == "ray" or args.shard_size is not None:
        return _embed_folder(args, layers, metadata)
    if output_format(args.output) == ".npy" and args.pooling == "none":
        raise UsageError(f"--output {args.output}: per-token vectors differ in length per "
                         "text and do not fit one .npy array; write .jsonl or .safetensors, "
                         "or pool them (--pooling mean|cls|max)")
    if args.pooling == "none" and args.normalize:
        raise UsageError("--normalize applies to sentence vectors; drop it or choose "
                         "--pooling mean|cls|max")
    source = read_texts(args.input)
    engine = _engine(args)
    started = time.perf_counter()
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


def _embed_folder(args: argparse.Namespace, layers: list[int], metadata: dict) -> int:
    """``--shard-size`` (streamed shards) or ``--engine ray`` (Parquet): sentence vectors of a
    file into the folder ``--output``."""
    if args.pooling == "none":
        raise UsageError("--shard-size and --engine ray write sentence vectors; choose "
                         "--pooling mean|cls|max")
    if args.input == "-":
        raise UsageError("--shard-size and --engine ray read a file; expected --input FILE")
    started = time.perf_counter()
    if args.engine == "ray":
        from bertkit.inference.ray_embed import embed_file_ray

        rows = embed_file_ray(args.input, args.output, args.model, pooling=args.pooling,
                              normalize=args.normalize, batch_size=args.batch_size,
                              workers=args.workers, device=args.device or "cpu")
        done = f"{rows} texts → {args.output}/*.parquet"
    else:
        from bertkit.inference.embed_stream import embed_stream

        report = embed_stream(_engine(args), args.input, args.output,
                              shard_size=args.shard_size, pooling=args.pooling, layers=layers,
                              normalize=args.normalize, metadata=metadata)
        done = (f"{report.texts} texts in {report.written} new shards ({report.skipped} "
                f"already done; rank {report.rank} of {report.world_size}) → {args.output}")
    print(f"embedded {done} in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0


def run_similar(args: argparse.Namespace) -> int:
    """``bertkit similar``: the texts of a corpus closest in meaning to a query.

    Cosine top-k semantic search: embeds the corpus (one text per line) and each query, prints the
    nearest corpus lines.
    """
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
