"""Read order = data order = import order: a module imports only from its own layer or
layers before it (DESIGN.md, principle 1). Checked on the source's import statements."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bertkit"

# Earliest first. Every top-level module or package of bertkit must be listed.
LAYERS = [
    "errors", "_fileio", "artifacts", "rformat", "tokenization", "data", "model", "heads",
    "losses", "variants", "checkpoints", "pretrained", "training", "objectives", "tasks",
    "corpora", "datasets", "pretraining", "distill", "inference", "export", "security",
    "quickstart", "demo", "server", "cli",
]
EXEMPT = {"__init__", "__main__"}  # the curated public API sits above every layer


def top_level_part(module_path: Path) -> str:
    return module_path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_parts(tree: ast.AST) -> set[str]:
    parts = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "bertkit":
                names = [f"bertkit.{alias.name}" for alias in node.names]
        else:
            continue
        parts.update(name.split(".")[1] for name in names
                     if name.startswith("bertkit.") and name.count(".") >= 1)
    return parts


def test_every_part_has_a_layer():
    parts = {top_level_part(p) for p in PACKAGE.rglob("*.py")} - EXEMPT
    assert parts <= set(LAYERS), f"add {sorted(parts - set(LAYERS))} to LAYERS"


def test_no_module_imports_a_later_layer():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = top_level_part(path)
        if own in EXEMPT:
            continue
        for part in imported_parts(ast.parse(path.read_text(encoding="utf-8"))):
            if part == "__version__":
                continue
            if part in LAYERS and LAYERS.index(part) > LAYERS.index(own):
                violations.append(f"{path.relative_to(PACKAGE)} imports bertkit.{part}")
    assert not violations, "\n".join(violations)


def test_the_check_catches_a_violation():
    tree = ast.parse("from bertkit.cli import main\nimport bertkit.model.bert\n"
                     "from bertkit import heads\n")
    assert imported_parts(tree) == {"cli", "model", "heads"}
