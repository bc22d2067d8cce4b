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


def value_origin(source: str, path: str, name: str, line: int, model: str = "") -> Origin | None:
    """The literal behind ``name`` as used on ``line``, if it is unambiguous.

    A parameter of the enclosing method gets its value from the argument of the top-level
    call that built ``model`` (``model = MLP(20, 64, 3)``) when there is one, else from its
    default; any other name from a module constant.
    """
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except cst.ParserSyntaxError:
        return None
    finder = _finder(cst)(name, line)
    wrapper.visit(finder)
    given = finder.argument_of(model) if finder.in_params else None
    if given is not None:
        node, kind = given, "argument"
    elif finder.in_params:
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
            self.position = None  # the parameter's place among the positional ones, self excluded
            self.owner = None  # the class whose method takes the parameter
            self.classes: list[str] = []
            self.constants: dict[str, list] = {}
            self.uses = 0
            self.depth = 0

        def visit_FunctionDef(self, node) -> None:
            self.depth += 1
            where = self.get_metadata(PositionProvider, node)
            if where.start.line <= self.line <= where.end.line:
                for i, param in enumerate(node.params.params + node.params.kwonly_params):
                    if param.name.value == self.name:
                        self.in_params, self.default = True, param.default
                        self.owner = self.classes[-1] if self.classes else None
                        self.position = i - 1 if i < len(node.params.params) else None

        def leave_FunctionDef(self, node) -> None:
            self.depth -= 1

        def visit_ClassDef(self, node) -> None:
            self.depth += 1
            self.classes.append(node.name.value)

        def leave_ClassDef(self, node) -> None:
            self.depth -= 1
            self.classes.pop()

        def visit_Assign(self, node) -> None:
            target = node.targets[0].target if len(node.targets) == 1 else None
            if self.depth == 0 and isinstance(target, cst.Name):
                self.constants.setdefault(target.value, []).append(node.value)

        def visit_Name(self, node) -> None:
            if node.value == self.name:
                self.uses += 1

        def argument_of(self, model: str):
            """The argument given for the parameter in ``model = Owner(...)`` at top level."""
            values = self.constants.get(model, [])
            call = values[0] if len(values) == 1 else None
            while isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) \
                    and isinstance(call.func.value, cst.Call):  # Owner(...).to(device)
                call = call.func.value
            if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Name)
                    and call.func.value == self.owner):
                return None
            for i, arg in enumerate(call.args):
                if arg.keyword is not None and arg.keyword.value == self.name:
                    return arg.value
                if arg.keyword is None and arg.star == "" and i == self.position:
                    return arg.value
            return None

    return Finder
