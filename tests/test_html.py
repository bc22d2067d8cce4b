"""`--format html`: data-flow edges in the records, the nested graph, and the page itself."""

import glob
import json
import os
import re

import pytest

from shapecheck.api import check_file
from shapecheck.diagnostics import ModelResult, Report, ShapeRecord, Status
from shapecheck.frontends.cli import main

pytest.importorskip("grandalf")
from shapecheck.render import graph  # noqa: E402
from shapecheck.render.html import page_data, page_name, render_page  # noqa: E402

from conftest import EXAMPLES  # noqa: E402


@pytest.fixture(scope="module")
def resnet():
    return check_file(os.path.join(EXAMPLES, "resnet_small.py"))


@pytest.fixture(scope="module")
def lenet_bug():
    return check_file(os.path.join(EXAMPLES, "lenet_bug.py"))


def _model(report, name):
    return next(m for m in report.models if m.name == name)


def _index(model, name):
    return next(i for i, r in enumerate(model.records) if r.name == name)


def test_records_name_the_records_that_made_their_inputs(resnet):
    model = _model(resnet, "ResNetSmall")
    at = {r.name: i for i, r in enumerate(model.records)}
    assert model.records[at["stem.0"]].sources == (-1,)
    assert model.records[at["stem.1"]].sources == (at["stem.0"],)
    # layer2's input is relu(layer1's bn2 + its identity shortcut): both branches feed it
    assert model.records[at["layer2.conv1"]].sources == (at["layer1.bn2"], at["stem.2"])
    assert model.records[at["layer2.shortcut.0"]].sources == (at["layer1.bn2"], at["stem.2"])
    assert model.records[at["fc"]].sources == (at["flatten"],)


def test_records_know_the_forward_that_called_them(resnet):
    model = _model(resnet, "ResNetSmall")
    scopes = {r.name: r.scope for r in model.records}
    assert scopes["flatten"] == "" and scopes["layer2.shortcut.0"] == "layer2" and scopes["stem.0"] == ""


def test_sources_survive_the_round_trip(resnet):
    assert Report.from_dict(resnet.to_dict()) == resnet
    layer = resnet.to_dict()["models"][1]["layers"][7]
    assert layer["sources"] == [6, 2] and layer["scope"] == "layer2"


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


def test_branches_sit_side_by_side_and_a_skip_goes_round(resnet):
    shape = graph.build(_model(resnet, "ResNetSmall"))
    layer2 = shape.groups["g:layer2"]
    assert any({"r7", "g:layer2.shortcut"} <= set(rank) for rank in layer2.layers)
    root = shape.groups[graph.ROOT]
    skip = next(e for e in root.edges if e[:2] == ["g:stem", "g:layer2"])
    assert len(skip[2]) == 1 and any(skip[2][0] in rank and "g:layer1" in rank for rank in root.layers)


def test_findings_land_on_the_layer_they_are_about(lenet_bug):
    model = _model(lenet_bug, "Net")
    marked = graph.marked_records(model, lenet_bug.diagnostics)
    by_code = {lenet_bug.diagnostics[n].code: model.records[i].name for i, ns in marked.items() for n in ns}
    assert by_code == {"SC101": "fc1", "SC201": "view"}


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
