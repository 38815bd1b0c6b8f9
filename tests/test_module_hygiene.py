"""The shape of the code the [families] seam promised: the loop, sharding, checkpoints and CLIs name no family
or model (they reach them through the registries and the family contract), and no function is over 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

from gan_jax.registry import FAMILIES, MODELS

PACKAGE = Path(__file__).resolve().parents[1] / "gan_jax"
MAX_FUNCTION_LINES = 80


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (PACKAGE / folder).rglob("*.py"))


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose may mention a family by name)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _names_used(path: Path) -> set[str]:
    """Identifiers, attribute names, imported module parts and (non-docstring) string constants of a file."""
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module:
            used |= set(node.module.split(".")) | {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            used |= {part for alias in node.names for part in alias.name.split(".")}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            used.add(node.value)
    return used


def test_train_and_cli_name_no_family_or_model():
    names = set(FAMILIES.names()) | set(MODELS.names())
    offenders = {}
    for path in _sources("train", "cli"):
        hits = sorted(_names_used(path) & (names | {"GAN", "TableGAN"}))  # names and family classes
        if hits:
            offenders[str(path.relative_to(PACKAGE))] = hits
    assert not offenders, offenders
    assert {"gan", "ctgan", "mlp", "dcgan"} <= names  # the check looks for real names


def test_no_function_over_80_lines():
    long = []
    for path in _sources("."):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, long
