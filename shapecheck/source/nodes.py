"""Walking a parsed file: every node walked once and kept on its tree (several readers of one
file, its imports and its string literals, each look at all of them), and walks of a subtree
that give what ``ast.walk`` and ``ast.iter_child_nodes`` give, in the same order, at about half
their cost (a file is walked several times in each check)."""

from __future__ import annotations

import ast

_AST = ast.AST


def all_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes of ``tree`` in ``ast.walk`` order; the tree must not change afterwards."""
    kept = tree.__dict__.get("_shapecheck_nodes")
    if kept is None:
        kept = tree.__dict__["_shapecheck_nodes"] = walk(tree)
    return kept


def walk(node: ast.AST) -> list[ast.AST]:
    """``list(ast.walk(node))``: ``node`` and everything under it, breadth first."""
    found = [node]
    index = 0
    while index < len(found):
        found.extend(child_nodes(found[index]))
        index += 1
    return found


def child_nodes(node: ast.AST) -> list[ast.AST]:
    """``list(ast.iter_child_nodes(node))``: the direct children, in field order."""
    children = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, _AST):
            children.append(value)
        elif isinstance(value, list):
            children.extend([item for item in value if isinstance(item, _AST)])
    return children
