"""Where a value written as a name comes from: a default argument or a module constant.

A fix to ``nn.Linear(in_dim, 10)`` is best made where ``in_dim`` gets its value, when that
place is unambiguous: the default of the enclosing function's parameter, or a module-level
constant assigned once from a literal and used only here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..diagnostics import Span


@dataclass(frozen=True)
class Origin:
    span: Span  # the literal that gives the name its value
    text: str
    kind: str  # "default" or "constant"


def value_origin(source: str, path: str, name: str, line: int) -> Origin | None:
    """The literal behind ``name`` as used on ``line``, if it is unambiguous."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except cst.ParserSyntaxError:
        return None
    finder = _finder(cst)(name, line)
    wrapper.visit(finder)
    if finder.in_params:
        node, kind = finder.default, "default"
    else:  # a module constant: assigned once, and used once besides its assignment
        values = finder.constants.get(name, [])
        node = values[0] if len(values) == 1 and finder.uses == 2 else None
        kind = "constant"
    if not isinstance(node, (cst.Integer, cst.BinaryOperation, cst.Tuple, cst.List)):
        return None
    where = wrapper.resolve(PositionProvider)[node]
    span = Span(path, where.start.line, where.start.column, where.end.line, where.end.column)
    return Origin(span, wrapper.module.code_for_node(node), kind)


def _finder(cst):
    from libcst.metadata import PositionProvider

    class Finder(cst.CSTVisitor):
        """The function enclosing ``line`` and its parameter ``name``; module constants; uses."""

        METADATA_DEPENDENCIES = (PositionProvider,)

        def __init__(self, name: str, line: int):
            super().__init__()
            self.name, self.line = name, line
            self.in_params, self.default = False, None
            self.constants: dict[str, list] = {}
            self.uses = 0
            self.depth = 0

        def visit_FunctionDef(self, node) -> None:
            self.depth += 1
            where = self.get_metadata(PositionProvider, node)
            if where.start.line <= self.line <= where.end.line:
                for param in node.params.params + node.params.kwonly_params:
                    if param.name.value == self.name:
                        self.in_params, self.default = True, param.default

        def leave_FunctionDef(self, node) -> None:
            self.depth -= 1

        def visit_ClassDef(self, node) -> None:
            self.depth += 1

        def leave_ClassDef(self, node) -> None:
            self.depth -= 1

        def visit_Assign(self, node) -> None:
            target = node.targets[0].target if len(node.targets) == 1 else None
            if self.depth == 0 and isinstance(target, cst.Name):
                self.constants.setdefault(target.value, []).append(node.value)

        def visit_Name(self, node) -> None:
            if node.value == self.name:
                self.uses += 1

    return Finder
