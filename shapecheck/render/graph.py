"""The traced forward pass as a nested, layered graph: plain data for the HTML page.

Nodes are the model's input and its shape records (layers, ops that change or join shapes,
ops that merge tensors such as a residual add); a record's ``sources`` give the edges. Records
nest in groups by module path (``layer1.shortcut.0`` sits in ``layer1`` then
``layer1.shortcut``); runs of identical numbered siblings (``layers.0`` … ``layers.31``) fold
into one group shown once, "× 32"; a group whose calls take turns with others (a U-Net's
``downs[i]`` and ``pool``) gives its place to its children. Each group's direct children are
ranked and ordered with grandalf's Sugiyama layout (layers top to bottom, crossings reduced,
long edges broken by dummy points); the page only assigns coordinates, so a group can open or
close without another layout pass. An edge that leaves or enters a group is laid out in that
group too, from the node to the group's bottom (``EXIT``) or from its top (``ENTRY``) to the
node, so a skip into the middle of an open block gets a lane of its own beside the nodes it
passes.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ..diagnostics import Diagnostic, ModelResult, ShapeRecord

INPUT = "in"
ROOT = ""
ENTRY, EXIT = "<", ">"  # a group's top and bottom, in its own layout


@dataclass
class Group:
    gid: str
    label: str
    count: int = 1  # > 1: a folded run of identical blocks
    span_label: str = ""  # "layers.0 – layers.31" for a fold
    children: list[str] = field(default_factory=list)  # node ids ("r3", "in") and group ids ("g:layer1")
    layers: list[list[str]] = field(default_factory=list)  # children and dummy ids, rank by rank, in order
    edges: list[list] = field(default_factory=list)  # [child or ENTRY, child or EXIT, [dummy ids]]


@dataclass
class ModelGraph:
    groups: dict[str, Group]
    parent: dict[str, str]  # node or group id -> the id of the group that holds it
    links: list[list]  # [source node, target node, [[group id, edge index in that group], ...]]
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


def build(model: ModelResult, marked: set[int] = frozenset(), stops: tuple[str, ...] = ()) -> ModelGraph:
    """The nested graph of one model; ``marked``: records with a finding (never folded away);
    ``stops``: ids of calls that failed before they were recorded, drawn after the last record."""
    shown = fold(model.records, marked)
    groups = {ROOT: Group(ROOT, model.name)}
    parent = {INPUT: ROOT}
    groups[ROOT].children.append(INPUT)
    for index, record in enumerate(model.records):
        if shown[index] == index:
            _place(groups, parent, f"r{index}", [(f"g:{p}", p.rsplit(".", 1)[-1]) for p in group_path(record)])
    for stop in stops:
        _place(groups, parent, stop, [])
    _name_folds(groups, model.records, shown)
    _open_interleaved(groups, parent)
    _lift_lone_groups(groups, parent)
    links = _links(model.records, shown, parent, groups)
    last = f"r{shown[len(model.records) - 1]}" if model.records else INPUT
    links += [[last, stop, _route(last, stop, parent, groups)] for stop in stops]
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


def _open_interleaved(groups, parent) -> None:
    """A group whose calls take turns with calls outside it (a ModuleList used in a loop: ``downs[i]``,
    then ``pool``, then ``downs[i + 1]``) would make a loop in its holder: its children take its place."""
    held: dict[str, list[int]] = {}
    for node in parent:
        if node.startswith("r"):
            for group in _chain(node, parent)[:-1]:
                held.setdefault(group, []).append(int(node[1:]))
    shown = sorted(held.get(ROOT, []))
    for gid in [g for g in groups if g != ROOT and held.get(g)]:
        mine = held[gid]
        if bisect.bisect_right(shown, max(mine)) - bisect.bisect_left(shown, min(mine)) > len(mine):
            _dissolve(groups, parent, gid)


def _dissolve(groups, parent, gid: str) -> None:
    group, holder = groups.pop(gid), parent.pop(gid)
    siblings = groups[holder].children
    at = siblings.index(gid)
    siblings[at:at + 1] = group.children
    for child in group.children:
        parent[child] = holder
        if child in groups and groups[child].count == 1:
            groups[child].label = f"{group.label}.{groups[child].label}"  # "downs.0", no longer inside "downs"


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
            links.append([start, target, _route(start, target, parent, groups)])
    return links


def _chain(node: str, parent) -> list[str]:
    chain = [node]
    while chain[-1] in parent:
        chain.append(parent[chain[-1]])
    return chain[::-1]  # root first


def _route(start: str, target: str, parent, groups) -> list[list]:
    """The group edges an edge runs along: out of the groups that hold its start (innermost
    first), across the group where the two paths part, into the groups that hold its target."""
    a, b = _chain(start, parent), _chain(target, parent)
    depth = 0
    while depth < min(len(a), len(b)) and a[depth] == b[depth]:
        depth += 1
    exits = [_group_edge(groups[a[i]], a[i + 1], EXIT) for i in range(len(a) - 2, depth - 1, -1)]
    entries = [_group_edge(groups[b[i]], ENTRY, b[i + 1]) for i in range(depth, len(b) - 1)]
    return exits + [_group_edge(groups[a[depth - 1]], a[depth], b[depth])] + entries


def _group_edge(group: Group, start: str, end: str) -> list:
    """[group id, index] of the edge start -> end among the group's edges, added if new."""
    for i, edge in enumerate(group.edges):
        if edge[0] == start and edge[1] == end:
            return [group.gid, i]
    group.edges.append([start, end, []])
    return [group.gid, len(group.edges) - 1]


# -- layout ----------------------------------------------------------------------------
def layout(group: Group) -> None:
    """Rank and order a group's children (grandalf's Sugiyama layout); dummies route long edges."""
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    ends = {end for edge in group.edges for end in edge[:2]} & {ENTRY, EXIT}
    vertices = {child: Vertex(child) for child in [*group.children, *sorted(ends)]}
    for vertex in vertices.values():
        vertex.view = _View()
    edges = [Edge(vertices[a], vertices[b]) for a, b, _ in group.edges]
    ranked: dict[int, list[tuple[float, str]]] = {}
    for component in Graph(list(vertices.values()), edges).C:
        sugiyama = SugiyamaLayout(component)
        sugiyama.init_all()
        sugiyama.draw(3)
        _collect(sugiyama, ranked, edges, group)
    rows = ([name for _, name in sorted(ranked[r]) if name not in ends] for r in sorted(ranked))
    group.layers = [row for row in rows if row]  # the group's top and bottom take no row


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


def unplaced_findings(model: ModelResult, diagnostics: tuple[Diagnostic, ...],
                      marked: dict[int, list[int]]) -> tuple[list[int], list[int]]:
    """The model's findings that land on no record: (those about the model as a whole, at its
    class line or with no place: its input; those about a call that failed before it was recorded)."""
    placed = {number for numbers in marked.values() for number in numbers}
    mine = [n for n, d in enumerate(diagnostics) if d.model == model.name and n not in placed]
    whole = [n for n in mine if diagnostics[n].span is None or diagnostics[n].line == model.line]
    return whole, [n for n in mine if n not in whole]


def finding_record(model: ModelResult, diagnostic: Diagnostic) -> int | None:
    """The record a finding is about: its layer by name, at the line where it is called; a layer
    no record names is a call that failed before it was recorded (None)."""
    if diagnostic.model != model.name or diagnostic.span is None:
        return None
    layer = diagnostic.fact("layer")
    if layer is None:
        at_line = [i for i, r in enumerate(model.records) if r.line == diagnostic.line]
        return at_line[0] if at_line else None
    lines = {diagnostic.line, *(r.span.line for r in diagnostic.related), diagnostic.fact("line")}
    named = [i for i, r in enumerate(model.records) if r.name == layer]
    for index in named:
        if model.records[index].line in lines:
            return index
    modules = [i for i in named if model.records[i].kind == "module"]  # an op's name ("add") is no address
    return modules[0] if modules else None
