"""The traced forward pass as a nested, layered graph: plain data for the HTML page.

Nodes are the model's input and its shape records; a record's ``sources`` give the edges.
Records nest in groups by module path (``layer1.shortcut.0`` sits in ``layer1`` then
``layer1.shortcut``); runs of identical numbered siblings (``layers.0`` … ``layers.31``) fold
into one group shown once, "× 32". Each group's direct children are ranked and ordered with
grandalf's Sugiyama layout (layers top to bottom, crossings reduced, long edges broken by
dummy points); the page only assigns coordinates, so a group can open or close without
another layout pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..diagnostics import Diagnostic, ModelResult, ShapeRecord

INPUT = "in"
ROOT = ""


@dataclass
class Group:
    gid: str
    label: str
    count: int = 1  # > 1: a folded run of identical blocks
    span_label: str = ""  # "layers.0 – layers.31" for a fold
    children: list[str] = field(default_factory=list)  # node ids ("r3", "in") and group ids ("g:layer1")
    layers: list[list[str]] = field(default_factory=list)  # children and dummy ids, rank by rank, in order
    edges: list[list] = field(default_factory=list)  # [child, child, [dummy ids]]


@dataclass
class ModelGraph:
    groups: dict[str, Group]
    parent: dict[str, str]  # node or group id -> the id of the group that holds it
    links: list[list]  # [source node, target node, group id, edge index in that group]
    shown: dict[int, int]  # record index -> the record drawn for it (folded blocks map to the first)


def shape_text(shape: tuple) -> str:
    """(16, 1, 32, 32) -> '16×1×32×32'; the symbolic batch (``s0``) reads N."""
    if not shape:
        return "scalar"
    return "×".join(re.sub(r"\bs\d+\b", "N", d) if isinstance(d, str) else str(d) for d in shape)


def group_path(record: ShapeRecord) -> list[str]:
    """The module paths that enclose a record, outermost first."""
    parts = record.name.split(".")[:-1] if record.kind == "module" else (record.scope.split(".") if record.scope else [])
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def build(model: ModelResult, marked: set[int] = frozenset()) -> ModelGraph:
    """The nested graph of one model; ``marked``: records with a finding (never folded away)."""
    shown = fold(model.records, marked)
    groups = {ROOT: Group(ROOT, model.name)}
    parent = {INPUT: ROOT}
    groups[ROOT].children.append(INPUT)
    for index, record in enumerate(model.records):
        if shown[index] == index:
            _place(groups, parent, f"r{index}", [(f"g:{p}", p.rsplit(".", 1)[-1]) for p in group_path(record)])
    _name_folds(groups, model.records, shown)
    _lift_lone_groups(groups, parent)
    links = _links(model.records, shown, parent, groups)
    for group in groups.values():
        layout(group)
    return ModelGraph(groups, parent, links, shown)


def _place(groups, parent, node: str, path: list[tuple[str, str]]) -> None:
    holder = ROOT
    for gid, label in path:
        if gid not in groups:
            groups[gid] = Group(gid, label)
            groups[holder].children.append(gid)
            parent[gid] = holder
        holder = gid
    groups[holder].children.append(node)
    parent[node] = holder


# -- folding repeated blocks -----------------------------------------------------------
def fold(records: tuple[ShapeRecord, ...], marked=frozenset()) -> dict[int, int]:
    """Record index -> the record that stands for it: itself, or its twin in the first block of a run."""
    shown = {i: i for i in range(len(records))}
    blocks = _blocks(records)
    for run in _runs(blocks, records, marked):
        first = blocks[run[0]]
        for key in run[1:]:
            for twin, index in zip(first, blocks[key]):
                shown[index] = twin
    for index in shown:  # twins always come earlier, so following them ends
        while shown[shown[index]] != shown[index]:
            shown[index] = shown[shown[index]]
    return shown


def _blocks(records) -> dict[str, list[int]]:
    """Numbered module paths ("layers.3") -> the records inside them, in order."""
    blocks: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        for path in group_path(record):
            if path.rsplit(".", 1)[-1].isdigit():
                blocks.setdefault(path, []).append(index)
    return blocks


def _runs(blocks, records, marked) -> list[list[str]]:
    """Runs of consecutive siblings ``p.k``, ``p.k+1``, … whose records match one for one."""
    siblings: dict[str, list[str]] = {}
    for key in blocks:
        siblings.setdefault(key.rpartition(".")[0], []).append(key)
    runs = []
    for keys in siblings.values():
        current = keys[:1]
        for key in keys[1:] + [None]:
            if key and _follows(current[-1], key) and _same(blocks[current[0]], blocks[key], records, marked):
                current.append(key)
                continue
            if len(current) > 1:
                runs.append(current)
            current = [key]
    return runs


def _follows(previous: str, key: str) -> bool:
    head, _, number = previous.rpartition(".")
    return key == f"{head}.{int(number) + 1}"


def _same(first: list[int], other: list[int], records, marked) -> bool:
    if len(first) != len(other) or marked & set(first + other):
        return False
    return all(_signature(records[a], records[b]) for a, b in zip(first, other))


def _signature(a: ShapeRecord, b: ShapeRecord) -> bool:
    return (a.op, a.kind, a.in_shapes, a.out_shapes, a.note, a.error) == (b.op, b.kind, b.in_shapes, b.out_shapes,
                                                                          b.note, b.error)


def _name_folds(groups, records, shown) -> None:
    """The first block of a run reads "layers × 32"."""
    counts: dict[str, list[str]] = {}
    for index, twin in shown.items():
        if twin != index:
            for mine, theirs in zip(group_path(records[twin]), group_path(records[index])):
                if mine != theirs and mine.rsplit(".", 1)[-1].isdigit():
                    counts.setdefault(mine, [mine])
                    if theirs not in counts[mine]:
                        counts[mine].append(theirs)
                    break
    for path, members in counts.items():
        group = groups.get(f"g:{path}")
        if group is not None:
            group.count = len(members)
            group.label = f"{path.rsplit('.', 1)[0].rsplit('.', 1)[-1]} × {len(members)}"
            group.span_label = f"{members[0]} – {members[-1]}"


def _lift_lone_groups(groups, parent) -> None:
    """A group that only wraps another group (``layers`` around ``layers × 32``) gives it its place."""
    for gid in [g for g in groups if g != ROOT]:
        group = groups[gid]
        if len(group.children) == 1 and group.children[0].startswith("g:"):
            inner, holder = group.children[0], parent.pop(gid)
            siblings = groups[holder].children
            siblings[siblings.index(gid)] = inner
            parent[inner] = holder
            del groups[gid]


# -- edges -----------------------------------------------------------------------------
def _links(records, shown, parent, groups) -> list[list]:
    """Each distinct edge between drawn nodes, with the group whose layout routes it."""
    links, seen = [], set()
    for index, record in enumerate(records):
        if shown[index] != index:
            continue  # a folded block: its edges repeat the first block's, and block k -> k+1 would loop
        target = f"r{index}"
        for source in record.sources:
            start = INPUT if source < 0 else f"r{shown[source]}"
            if start == target or (start, target) in seen:
                continue
            seen.add((start, target))
            links.append([start, target, *_route(start, target, parent, groups)])
    return links


def _chain(node: str, parent) -> list[str]:
    chain = [node]
    while chain[-1] in parent:
        chain.append(parent[chain[-1]])
    return chain[::-1]  # root first


def _route(start: str, target: str, parent, groups) -> tuple[str, int]:
    """The group where the two paths part, and the index of the edge between its children."""
    a, b = _chain(start, parent), _chain(target, parent)
    depth = 0
    while depth < min(len(a), len(b)) and a[depth] == b[depth]:
        depth += 1
    holder, pair = a[depth - 1], [a[depth], b[depth]]
    group = groups[holder]
    for i, edge in enumerate(group.edges):
        if edge[:2] == pair:
            return holder, i
    group.edges.append([*pair, []])
    return holder, len(group.edges) - 1


# -- layout ----------------------------------------------------------------------------
def layout(group: Group) -> None:
    """Rank and order a group's children (grandalf's Sugiyama layout); dummies route long edges."""
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    vertices = {child: Vertex(child) for child in group.children}
    for vertex in vertices.values():
        vertex.view = _View()
    edges = [Edge(vertices[a], vertices[b]) for a, b, _ in group.edges]
    ranked: dict[int, list[tuple[float, str]]] = {}
    for component in Graph(list(vertices.values()), edges).C:
        sugiyama = SugiyamaLayout(component)
        sugiyama.init_all()
        sugiyama.draw(3)
        _collect(sugiyama, ranked, edges, group)
    group.layers = [[name for _, name in sorted(ranked[r])] for r in sorted(ranked)]


def _collect(sugiyama, ranked, edges, group) -> None:
    from grandalf.layouts import DummyVertex

    offset = max((x for row in ranked.values() for x, _ in row), default=-1.0) + 1e6
    dummies = {}
    for edge, controls in sugiyama.ctrls.items():
        index = edges.index(edge)
        names = []
        for rank in sorted(controls):
            if not isinstance(controls[rank], DummyVertex):
                continue
            name = f"d{index}.{rank}"
            dummies[id(controls[rank])] = name
            names.append(name)
        group.edges[index][2] = names
    for layer in sugiyama.layers:
        for vertex in layer:
            name = dummies.get(id(vertex)) or vertex.data
            info = sugiyama.grx[vertex]
            ranked.setdefault(info.rank, []).append((offset + vertex.view.xy[0], name))


class _View:
    w, h, xy = 40, 20, (0.0, 0.0)


def marked_records(model: ModelResult, diagnostics: tuple[Diagnostic, ...]) -> dict[int, list[int]]:
    """Record index -> the indices (in ``diagnostics``) of the findings that land on it."""
    found: dict[int, list[int]] = {}
    for number, diagnostic in enumerate(diagnostics):
        index = finding_record(model, diagnostic)
        if index is not None:
            found.setdefault(index, []).append(number)
    return found


def finding_record(model: ModelResult, diagnostic: Diagnostic) -> int | None:
    """The record a finding is about: its layer by name, at the line where it is called."""
    if diagnostic.model != model.name or diagnostic.span is None:
        return None
    layer = diagnostic.fact("layer")
    lines = {diagnostic.line, *(r.span.line for r in diagnostic.related), diagnostic.fact("line")}
    named = [i for i, r in enumerate(model.records) if layer is not None and r.name == layer]
    for index in named:
        if model.records[index].line in lines:
            return index
    if named:
        return named[0]
    at_line = [i for i, r in enumerate(model.records) if r.line == diagnostic.line]
    return at_line[0] if at_line else None
