"""The quick paths taken on every op of a trace or a build agree with the general ones they stand
in for: torch's pytree, reading sizes one by one, devices, walks of the syntax tree, a random fill
that torch would run on meta, and the re-check of a fix proof, which explains nothing."""

import ast
import collections
import textwrap

import torch
from torch.utils._pytree import tree_flatten

from shapecheck.api import check_source
from shapecheck.engine.symbolic import FakeSession, _any_off_meta, shape_of, size_value
from shapecheck.engine.tracer import _tensors
from shapecheck.source.nodes import all_nodes, child_nodes, walk


def _meta(*shape):
    return torch.empty(shape, device="meta")


def test_tensors_of_a_call_come_in_pytree_order():
    a, b, c, d = _meta(1), _meta(2), _meta(3), torch.zeros(4)
    pair = collections.namedtuple("Pair", "x y")
    structures = [
        a,
        (a, 2, None, "s", slice(1, 2), ..., torch.float32, torch.device("meta"), torch.Size([2, 3])),
        ((a, [b, {"k": c, "j": (d,)}]), {"dim": 1, "out": None}),
        (pair(a, b), collections.OrderedDict(z=c, y=d)),
        torch.max(_meta(2, 3), dim=1),  # a return type that pytree flattens
        ([], {}, ()),
    ]
    for structure in structures:
        expected = [t for t in tree_flatten(structure)[0] if isinstance(t, torch.Tensor)]
        found = _tensors(structure)
        assert len(found) == len(expected) and all(x is y for x, y in zip(found, expected))


def test_shapes_read_whole_match_sizes_read_one_by_one():
    plain = _meta(16, 3, 5)
    assert shape_of(plain) == (16, 3, 5) and all(type(s) is int for s in shape_of(plain))
    session = FakeSession.create("symbolic")
    symbolic = session.make_input((8, 3), "float32")
    assert symbolic._has_symbolic_sizes_strides
    assert shape_of(symbolic) == tuple(size_value(d) for d in symbolic.shape) == (8, 3)
    with session.mode:
        flat = symbolic.reshape(-1)
    assert shape_of(flat) == (24,)


def test_a_tensor_off_meta_is_found_whatever_its_kind():
    fake_cpu = FakeSession.create("fake").make_input((2,), "float32", device="cpu")
    assert fake_cpu.device.type == "cpu"
    on_meta = [_meta(2), torch.nn.Parameter(_meta(2)), 3, 2.5, None, "x", (1, [_meta(1)])]
    assert not _any_off_meta(on_meta)
    for stray in (torch.zeros(2), torch.nn.Parameter(torch.zeros(2)), fake_cpu, [1, (torch.zeros(1),)]):
        assert _any_off_meta(on_meta + [stray]), stray


def test_all_nodes_are_those_of_a_walk_and_are_walked_once():
    tree = ast.parse(textwrap.dedent('''
        import torch as t
        def f(x, y=2):
            return [x + i for i in range(y)], f"{x!r}"
        class C:
            z = lambda self: 1
    '''))
    nodes = all_nodes(tree)
    assert nodes == list(ast.walk(tree))
    assert all_nodes(tree) is nodes


def test_walks_of_a_subtree_give_what_ast_gives_in_its_order():
    tree = ast.parse(textwrap.dedent('''
        from torch import nn as n, randn
        @dataclass(frozen=True)
        class C(n.Module, metaclass=M):
            a: int = 3
            def forward(self, x, *rest, k=1, **kw):
                with t.no_grad() as g, open("f") as h:
                    y = {i: [j async for j in x] for i in x if i} | {**kw}
                match x:
                    case [1, *r] if r: return lambda q=2: q
                try:
                    del y[0:2, ...]
                except (A, B) as e:
                    raise e from None
                return x[1:-1:2] @ (yield from y)
    '''))
    for node in ast.walk(tree):
        assert child_nodes(node) == list(ast.iter_child_nodes(node))
        assert walk(node) == list(ast.walk(node))


_GRAD_FILL = '''
import torch
import torch.nn as nn


# shapecheck: input=(2, 3)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.empty(3, 3))
        self.w.uniform_(-1, 1)

    def forward(self, x):
        return x @ self.w
'''


def test_a_random_fill_torch_refuses_is_still_reported():
    """In grad mode torch refuses to fill a parameter in place (for real and on meta): the build
    fails as it would for real, the fill is not skipped."""
    namespace = {}
    exec(compile(_GRAD_FILL, "net.py", "exec"), namespace)
    try:
        namespace["Net"]()
        refused = ""
    except RuntimeError as exc:
        refused = str(exc)
    assert "in-place operation" in refused
    report = check_source(_GRAD_FILL, "net.py")
    assert [d.code for d in report.diagnostics] == ["SC905"]
    assert "in-place operation" in report.diagnostics[0].message


def test_layers_initialised_by_torch_build_and_check_the_same():
    source = _GRAD_FILL.replace("self.w.uniform_(-1, 1)", "nn.init.kaiming_uniform_(self.w)\n"
                                "        self.fc = nn.Linear(3, 4)\n        nn.init.normal_(self.fc.weight)")
    source = source.replace("return x @ self.w", "return self.fc(x @ self.w)")
    report = check_source(source, "net.py")
    assert report.diagnostics == ()
    assert report.models[0].output_shapes == ((2, 4),)


def test_a_fix_proofs_recheck_finds_what_the_full_check_finds():
    """A fix proof's re-check leaves out the formulas on the records and the input sizes that
    would work (it reads neither); its findings, shapes and statuses are those of a full check."""
    from pathlib import Path

    from shapecheck.api import _check_once
    from shapecheck.config import Settings

    root = Path(__file__).parent.parent
    for case in ("examples/lenet_bug.py", "tests/models/cases/unet_skip.py", "tests/models/cases/rows_cut.py"):
        text = (root / case).read_text()
        full, lean = (_check_once(text, str(root / case), Settings(), explain=e) for e in (True, False))
        assert full.diagnostics, case
        assert [(d.code, d.span, d.message, d.fix) for d in lean.diagnostics] == \
               [(d.code, d.span, d.message, d.fix) for d in full.diagnostics], case
        for a, b in zip(full.models, lean.models, strict=True):
            assert (a.status, a.input_shapes, a.output_shapes) == (b.status, b.input_shapes, b.output_shapes)
            assert [(r.name, r.op, r.in_shapes, r.out_shapes) for r in a.records] == \
                   [(r.name, r.op, r.in_shapes, r.out_shapes) for r in b.records]
            assert any(r.note for r in a.records) and not any(r.note or r.steps for r in b.records)
        works = [any("checked and works" in n for d in r.diagnostics for n in d.notes) for r in (full, lean)]
        assert works == [case.endswith("unet_skip.py"), False], case  # a cat of maps a floor made unequal
