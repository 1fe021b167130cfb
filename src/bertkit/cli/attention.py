"""``bertkit attention``: attention maps of a text as PNG heatmaps or a browsable HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.errors import UsageError
from bertkit.inference.attention_maps import (
    attention_maps,
    plot_attention,
    plot_heads,
    write_attention_html,
)
from bertkit.inference.engine import Engine


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "attention", run)
    parser.add_argument("text", help="the text to look at")
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument("--layer", type=numbers.index, default=-1,
                        help="layer (default -1, the last)")
    parser.add_argument("--head", type=numbers.nonnegative, default=0, help="head (default 0)")
    parser.add_argument("--all", action="store_true",
                        help="draw every head of --layer in one grid instead of one head")
    parser.add_argument("--out", type=Path, default=None, metavar="MAP.png",
                        help="write the heatmap (or the grid, with --all) as PNG")
    parser.add_argument("--html", type=Path, default=None, metavar="OUT.html",
                        help="write a self-contained HTML page to browse every layer and head")
    parser.add_argument("--device", default=None, help="cpu, cuda … (default: cuda if present)")


def run(args: argparse.Namespace) -> int:
    """``bertkit attention``: draw a text's attention maps (PNG heatmap, head grid, HTML view).

    Layers and heads count from 0; negative layers from the end. PNG output needs matplotlib (pip
    install 'bertkit[viz]'); the HTML view does not.
    """
    if args.out is None and args.html is None:
        raise UsageError("nothing to write: pass --out MAP.png and/or --html OUT.html")
    if args.out is not None and args.out.suffix.lower() != ".png":
        raise UsageError(f"--out {args.out}: expected a .png file name")
    engine = Engine.from_pretrained(args.model, device=args.device)
    # The PNG needs one layer; only the HTML view needs every layer's explicit attention.
    maps = attention_maps(engine, None, args.text,
                          layers=None if args.html is not None else [args.layer])
    if args.out is not None:
        if args.all:
            plot_heads(maps, args.layer, args.out)
        else:
            plot_attention(maps, args.layer, args.head, args.out)
        print(f"wrote {args.out}")
    if args.html is not None:
        write_attention_html(maps, args.html, title=f"bertkit attention — {args.model.name}",
                             layer=args.layer, head=args.head)
        print(f"wrote {args.html}")
    return 0
