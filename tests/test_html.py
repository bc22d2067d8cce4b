"""`--format html`: data-flow edges in the records, the nested graph, and the page itself."""

import glob
import json
import os
import re
import textwrap

import pytest

from shapecheck.api import check_file, check_source
from shapecheck.diagnostics import Diagnostic, ModelResult, Report, ShapeRecord, Span, Status
from shapecheck.frontends.cli import main
from shapecheck.rules.catalog import rule

pytest.importorskip("grandalf")
from shapecheck.render import graph  # noqa: E402
from shapecheck.render.html import page_data, page_name, render_page  # noqa: E402
from shapecheck.render.terminal import shape_table  # noqa: E402

from conftest import CASES, EXAMPLES  # noqa: E402


@pytest.fixture(scope="module")
def resnet():
    return check_file(os.path.join(EXAMPLES, "resnet_small.py"))


@pytest.fixture(scope="module")
def lenet_bug():
    return check_file(os.path.join(EXAMPLES, "lenet_bug.py"))


@pytest.fixture(scope="module")
def more_layers():
    return check_file(os.path.join(CASES, "more_layers.py"))


def _model(report, name):
    return next(m for m in report.models if m.name == name)


def _index(model, name):
    return next(i for i, r in enumerate(model.records) if r.name == name)


def test_records_name_the_records_that_made_their_inputs(resnet):
    model = _model(resnet, "ResNetSmall")
    at = {r.name: i for i, r in enumerate(model.records)}
    assert model.records[at["stem.0"]].sources == (-1,)
    assert model.records[at["stem.1"]].sources == (at["stem.0"],)
    assert model.records[at["fc"]].sources == (at["flatten"],)


def test_a_residual_add_is_a_record_of_its_own_that_both_branches_feed(resnet):
    model = _model(resnet, "ResNetSmall")
    at = {r.name: i for i, r in enumerate(model.records) if r.kind == "module"}
    add = at["layer1.bn2"] + 1  # relu(bn2(...) + x): the add, not the relu that keeps its shape
    assert (model.records[add].kind, model.records[add].op, model.records[add].scope) == ("merge", "add", "layer1")
    assert model.records[add].sources == (at["layer1.bn2"], at["stem.2"])  # the branch, then the shortcut
    assert model.records[at["layer2.conv1"]].sources == (add,)
    assert model.records[at["layer2.shortcut.0"]].sources == (add,)


def test_a_merge_needs_two_tensors_of_the_data_flow():
    records = check_source(textwrap.dedent("""\
        import torch
        from torch import nn
        from torch.nn import functional as F

        # shapecheck: input=(2, 8)
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 8)
                self.scale = nn.Parameter(torch.ones(8))

            def forward(self, x):
                y = F.relu(self.fc(x)) * self.scale
                return torch.where(y > 0, y, x) + x * 2
        """), "net.py").models[0].records
    assert [(r.kind, r.op) for r in records] == [("module", "Linear"), ("merge", "where"), ("merge", "add")]
    assert records[1].sources == (0, -1) and records[2].sources == (1, -1)


def test_the_text_table_leaves_merges_out(resnet):
    table = shape_table(_model(resnet, "ResNetSmall"))
    assert table.row_count == sum(r.kind != "merge" for r in _model(resnet, "ResNetSmall").records)


def test_records_know_the_forward_that_called_them(resnet):
    model = _model(resnet, "ResNetSmall")
    scopes = {r.name: r.scope for r in model.records}
    assert scopes["flatten"] == "" and scopes["layer2.shortcut.0"] == "layer2" and scopes["stem.0"] == ""


def test_sources_survive_the_round_trip(resnet):
    assert Report.from_dict(resnet.to_dict()) == resnet
    layer = resnet.to_dict()["models"][1]["layers"][8]
    assert layer["sources"] == [7] and layer["scope"] == "layer2"


def test_old_documents_without_sources_still_load():
    data = ShapeRecord("fc", "module", "Linear", ((2, 3),), ((2, 4),)).to_dict()
    del data["sources"], data["scope"]
    assert ShapeRecord.from_dict(data).sources == ()


def test_the_symbolic_batch_reads_n():
    assert graph.shape_text(("s0", 3, 32, 32)) == "N×3×32×32"
    assert graph.shape_text(("2*s0", 10)) == "2*N×10"
    assert graph.shape_text(()) == "scalar"


def _rec(name, sources, shape=(2, 8), kind="module", op="Linear", scope=""):
    return ShapeRecord(name, kind, op, ((2, 8),), (shape,), line=1, sources=sources, scope=scope)


def _blocks(n, odd=None):
    records = [_rec("embed", (-1,))]
    for k in range(n):
        width = 9 if k == odd else 8
        base = len(records)
        records += [_rec(f"layers.{k}.a", (base - 1,), (2, width)), _rec(f"layers.{k}.b", (base,))]
    records.append(_rec("head", (len(records) - 1,)))
    return ModelResult("M", "m.py", 1, ((2, 8),), "cli", Status.CHECKED, tuple(records))


def test_identical_numbered_blocks_fold_into_the_first():
    model = _blocks(4)
    shape = graph.build(model)
    assert shape.shown[3] == 1 and shape.shown[8] == 2 and shape.shown[9] == 9
    fold = shape.groups["g:layers.0"]
    assert (fold.label, fold.count, fold.span_label) == ("layers × 4", 4, "layers.0 – layers.3")
    assert "g:layers.1" not in shape.groups and "g:layers" not in shape.groups  # the wrapper gives way
    links = [link[:2] for link in shape.links]
    assert ["r2", "r9"] in links  # the last block's output, drawn from the first's
    assert ["r2", "r1"] not in links  # block 0 feeding block 1 is no loop inside the fold


def test_a_block_that_differs_or_holds_a_finding_is_not_folded():
    assert graph.build(_blocks(4, odd=2)).groups["g:layers.0"].count == 2
    assert graph.build(_blocks(4), marked={5}).groups["g:layers.0"].count == 2


def test_a_module_list_called_in_turn_with_other_layers_leaves_its_blocks_in_place():
    records = (_rec("downs.0.conv", (-1,)), _rec("pool", (0,)), _rec("downs.1.conv", (1,), (2, 9)), _rec("pool", (2,)))
    shape = graph.build(ModelResult("M", "m.py", 1, ((2, 8),), "cli", Status.CHECKED, records))
    assert "g:downs" not in shape.groups and shape.groups["g:downs.1"].label == "downs.1"
    assert shape.groups[graph.ROOT].layers == [["in"], ["g:downs.0"], ["r1"], ["g:downs.1"], ["r3"]]  # no loop


def test_branches_sit_side_by_side_and_meet_at_the_add(resnet):
    shape = graph.build(_model(resnet, "ResNetSmall"))
    layer2 = shape.groups["g:layer2"]
    assert layer2.layers[0] == ["r8", "g:layer2.shortcut"] and layer2.layers[-1] == ["r14"]  # conv1 | shortcut
    into_add = {tuple(link[:2]) for link in shape.links if link[1] == "r14"}
    assert into_add == {("r11", "r14"), ("r13", "r14")}  # bn2 and the shortcut's bn


def test_a_skip_into_an_open_block_has_a_lane_of_its_own(resnet):
    shape = graph.build(_model(resnet, "ResNetSmall"))
    skip = next(link for link in shape.links if link[:2] == ["r2", "r7"])  # stem's relu -> layer1's add
    assert skip[2] == [["g:stem", 3], ["", 1], ["g:layer1", 5]]  # out of stem, stem -> layer1, into layer1
    layer1 = shape.groups["g:layer1"]
    assert layer1.edges[5][:2] == [graph.ENTRY, "r7"]
    lane = layer1.edges[5][2]  # beside conv1, bn1, conv2 and bn2, whose rows it shares
    assert [row for row in layer1.layers if set(row) & set(lane)] == [[f"r{i}", d] for i, d in zip(range(3, 7), lane)]
    assert graph.ENTRY not in sum(layer1.layers, []) and graph.EXIT not in sum(layer1.layers, [])


def test_findings_land_on_the_layer_they_are_about(lenet_bug):
    model = _model(lenet_bug, "Net")
    marked = graph.marked_records(model, lenet_bug.diagnostics)
    by_code = {lenet_bug.diagnostics[n].code: model.records[i].name for i, ns in marked.items() for n in ns}
    assert by_code == {"SC101": "fc1", "SC201": "view"}


def test_a_call_that_failed_before_it_was_recorded_is_the_node_its_finding_lands_on(more_layers):
    models = {m["name"]: m for m in page_data(more_layers)["models"]}
    codes = [d.code for d in more_layers.diagnostics]
    attend = models["Attend"]["graph"]  # fails at its first layer: nothing recorded
    failed = f"x{codes.index('SC105')}"
    assert set(attend["nodes"]) == {graph.INPUT, failed} and [link[:2] for link in attend["links"]] == [["in", failed]]
    assert attend["nodes"][failed]["name"] == "attn" and attend["nodes"][failed]["line"] == 23  # where it is called
    shuffle = models["PixelShuffleWrong"]["graph"]
    failed = f"x{codes.index('SC501')}"
    assert shuffle["nodes"][failed]["findings"] == [codes.index("SC501")]
    assert [link[:2] for link in shuffle["links"]][-1] == ["r0", failed]  # after the conv, the last record


def test_an_op_is_found_by_its_name_only_at_its_line():
    records = (_rec("add", (-1,), kind="merge", op="add"), _rec("fc", (0,)))
    model = ModelResult("M", "m.py", 1, ((2, 8),), "cli", Status.CHECKED, records)
    here, later = (Diagnostic(rule("SC502"), "fails", Span("m.py", line, 0, line, 5), "M", facts=(("layer", "add"),))
                   for line in (1, 9))
    assert graph.finding_record(model, here) == 0
    assert graph.finding_record(model, later) is None  # another add, which failed before it was recorded


def test_a_finding_about_the_whole_model_lands_on_its_input():
    report = check_file(os.path.join(CASES, "no_input_fits.py"))
    number = next(n for n, d in enumerate(report.diagnostics) if d.code == "SC130")
    nodes = next(m for m in page_data(report)["models"] if m["name"] == "Net")["graph"]["nodes"]
    assert nodes[graph.INPUT]["findings"] == [number]


def test_small_models_open_every_group_and_big_ones_only_where_findings_are(resnet):
    data = page_data(resnet)["models"][1]["graph"]
    assert set(data["open"]) == set(data["groups"])
    model = _blocks(30, odd=29)
    report = Report("m.py", (model,))
    assert page_data(report)["models"][0]["graph"]["open"] == [graph.ROOT]


def test_the_page_fetches_nothing(lenet_bug):
    page = render_page(lenet_bug)
    assert not re.search(r"<(script|img|iframe)[^>]*\bsrc=|<link\b|@import|url\((?!#)", page)
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data)["file"] == lenet_bug.path


def test_a_closing_tag_in_the_source_cannot_end_the_data():
    report = Report("x.py", source="s = '</script><b>'\n")
    page = render_page(report)
    assert page.count("</script>") == 2 and "<\\/script><b>" in page


def test_page_names_keep_folders_apart():
    assert page_name("examples/lenet.py") == "examples__lenet.html"
    assert page_name("./a/b/lenet.py") == "a__b__lenet.html"


def test_cli_writes_one_page(tmp_path, worker, capsys):
    out = tmp_path / "report.html"
    code = main([os.path.join(EXAMPLES, "lenet_bug.py"), "--format", "html", "-o", str(out)], worker=worker)
    assert code == 1 and capsys.readouterr().out == ""
    assert "fc1" in out.read_text(encoding="utf-8")


def test_cli_writes_an_index_and_a_page_per_file_for_a_folder(tmp_path, worker):
    code = main([EXAMPLES, "--format", "html", "-o", str(tmp_path / "site")], worker=worker)
    names = sorted(os.listdir(tmp_path / "site"))
    assert code == 1 and "index.html" in names and len(names) == len(glob.glob(os.path.join(EXAMPLES, "*.py"))) + 1
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{n}"' in index for n in names if n != "index.html")


def test_html_without_output_is_a_usage_error(worker, capsys):
    assert main([os.path.join(EXAMPLES, "lenet.py"), "--format", "html"], worker=worker) == 2
    assert "-o" in capsys.readouterr().err
