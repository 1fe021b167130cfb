"""Read order = data order = import order: a module imports only from its own layer or
layers before it (DESIGN.md, principle 1; docs/architecture.md draws the same list). Checked
on the source's import statements.

A layer is a top-level module or package of bertkit, or a part of one (``model.config``): a
module belongs to the longest layer name its dotted path starts with, so the model package can
hold its configuration below the name tables and checkpoint format that its public classes
build on.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bertkit"

# Earliest first. Every module of bertkit must fall in one of these.
LAYERS = [
    "version", "errors", "_fileio",          # bottom: imported by anything
    "tokenization",                          # text → token ids
    "data",                                  # corpora, labelled files, masking, batches
    "resources",                             # real artifacts fetched into those formats
    "model.config", "model.outputs",         # what a model is, what it returns
    "variants",                              # family presets and checkpoint name tables
    "checkpoints",                           # the Hugging Face format; provenance manifests
    "model",                                 # core network, heads, losses, input checks
    "inference.fastpath",                    # the CPU fast form of the core (inference only)
    "model.base",                            # what public classes share: load, save, fast form
    "model.pretrained",                      # the public classes, every family
    "model.causal_lm",                       # BertLMHeadModel: the decoder with its LM head
    "generation",                            # greedy, beam search, sampling (duck-typed model)
    "model.encoder_decoder",                 # EncoderDecoderModel: seq2seq, generate()
    "training",                              # the generic loop
    "objectives",                            # pretraining losses
    "tasks",                                 # fine-tuning tasks: specs, features, metrics
    "runs",                                  # run drivers: pretrain, distill, fine-tune
    "inference",                             # engine, fast path, fill-mask, embeddings, maps
    "export",                                # ONNX and its runtime
    "security",                              # audits
    "analysis",                              # what the layers know: heads, importance, pruning
    "demo",                                  # the main job and the quickstart
    "server",                                # HTTP API
    "cli",                                   # the command line
]
EXEMPT = {"__init__", "__main__"}  # the curated public API sits above every layer


def module_name(module_path: Path) -> str:
    """``model/config.py`` → ``model.config``; a package's ``__init__`` is the package."""
    parts = list(module_path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def layer_of(dotted: str) -> str | None:
    """The longest layer that ``dotted`` (a module path below ``bertkit``) starts with."""
    matches = [layer for layer in LAYERS if dotted == layer or dotted.startswith(layer + ".")]
    return max(matches, key=len, default=None)


def imported_modules(tree: ast.AST) -> set[str]:
    """Dotted paths below ``bertkit`` that ``tree`` imports (``bertkit.model.config`` →
    ``model.config``; ``from bertkit import heads`` → ``heads``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "bertkit":
                names = [f"bertkit.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name.removeprefix("bertkit.") for name in names
                     if name.startswith("bertkit."))
    return found


def test_every_module_has_a_layer():
    unplaced = sorted(name for path in PACKAGE.rglob("*.py")
                      if (name := module_name(path)) not in EXEMPT and layer_of(name) is None)
    assert not unplaced, f"add a layer for {unplaced}"


def test_no_module_imports_a_later_layer():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = layer_of(module_name(path))
        if own is None:
            continue
        for imported in imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
            target = layer_of(imported)
            if target is not None and LAYERS.index(target) > LAYERS.index(own):
                violations.append(f"{path.relative_to(PACKAGE)} ({own}) imports "
                                  f"bertkit.{imported} ({target})")
    assert not violations, "\n".join(violations)


def test_the_check_catches_a_violation():
    tree = ast.parse("from bertkit.cli import main\nimport bertkit.model.bert\n"
                     "from bertkit import heads\nfrom bertkit.model.config import BertConfig\n")
    assert imported_modules(tree) == {"cli", "model.bert", "heads", "model.config"}
    assert layer_of("model.config") == "model.config"
    assert layer_of("model.bert") == "model"
    assert layer_of("checkpoints.huggingface") == "checkpoints"
    assert LAYERS.index(layer_of("model.pretrained")) > LAYERS.index(layer_of("checkpoints"))
    assert layer_of("inference.fastpath.layers") == "inference.fastpath"
    assert LAYERS.index("inference.fastpath") > LAYERS.index(layer_of("model.bert"))
