"""Every node of a parsed file, walked once and kept on its tree: several readers of one file
(its imports, its string literals) each look at all of them."""

from __future__ import annotations

import ast


def all_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes of ``tree`` in ``ast.walk`` order; the tree must not change afterwards."""
    kept = tree.__dict__.get("_shapecheck_nodes")
    if kept is None:
        kept = tree.__dict__["_shapecheck_nodes"] = list(ast.walk(tree))
    return kept
