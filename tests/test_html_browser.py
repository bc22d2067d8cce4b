"""The html pages in a real headless Chromium (Debian's `chromium`, driven by Playwright): the
examples, the clean corpus (no finding: nothing red) and the case files (each finding red where
it lands, on screen, and its node leads to its line).

Every page is rendered once (the files are checked in this process) and loaded once, into the
one tab that the tests share: the tests on a file run together. Skipped when Playwright or the
browser is missing. SHAPECHECK_CHROMIUM names another binary.
"""

import base64
import glob
import json
import os
import re
import shutil

import pytest

pytest.importorskip("grandalf")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("SHAPECHECK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no chromium installed")

from shapecheck.api import check_file  # noqa: E402
from shapecheck.diagnostics import Report  # noqa: E402
from shapecheck.render.html import page_name, render_page, write_pages  # noqa: E402

from conftest import CASES, EXAMPLES, ROOT  # noqa: E402
from test_html import _blocks  # noqa: E402

CORPUS = os.path.join(ROOT, "tests", "corpus")
FOLDERS = (EXAMPLES, CORPUS, CASES)
EXAMPLE_FILES, CORPUS_FILES, CASE_FILES = (sorted(glob.glob(os.path.join(f, "*.py"))) for f in FOLDERS)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
VIEW = {"width": 1400, "height": 900}


def files(paths):
    """Parametrize a test by file (``examples/lenet``); the tests on one file share its tab."""
    ids = [f"{os.path.basename(os.path.dirname(p))}/{os.path.basename(p)[:-3]}" for p in paths]
    return pytest.mark.parametrize("page", paths, ids=ids, indirect=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Every file's page, in one folder."""
    out = tmp_path_factory.mktemp("site")
    write_pages([check_file(path) for path in EXAMPLE_FILES + CORPUS_FILES + CASE_FILES], str(out), folder=True)
    return out


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        running = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield running
        running.close()


@pytest.fixture(scope="module")
def tab(browser):
    """The one tab the tests load their pages into."""
    shared = Page(browser)
    yield shared
    shared.page.close()


@pytest.fixture(scope="module")
def page(request, tab, site):
    """The page of one checked file, loaded once for all the tests on that file."""
    return tab.load(site / page_name(request.param))


class Page:
    """A tab: the page it shows, the console errors logged since it loaded and the data it draws."""

    def __init__(self, browser, scheme="light"):
        self.page = browser.new_page(viewport=VIEW, color_scheme=scheme)
        self.errors, self.data = [], {}
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def load(self, path):
        self.errors.clear()
        self.page.goto(f"file://{path}")
        self.page.wait_for_selector("body[data-ready]", timeout=20000)
        self.data = json.loads(self.page.locator("#data").text_content())
        return self

    def placed(self):
        """(finding index, model, node id) for every finding that lands on a node."""
        return [(i, m["name"], node_id) for m in self.data["models"] if "graph" in m
                for node_id, node in m["graph"]["nodes"].items() for i in node["findings"]]

    def node(self, model, node_id, extra=""):
        return self.page.locator(f'.model[data-model="{model}"] .node{extra}[data-id="{node_id}"]')

    def red_pixels(self, box) -> int:
        """Red pixels on screen inside ``box``."""
        shot = base64.b64encode(self.page.screenshot(clip=box)).decode()
        return self.page.evaluate(_COUNT_RED, shot)

    def in_code_view(self, line: int) -> bool:
        """Whether source line ``line`` is highlighted, scrolled into the code panel's view and on screen."""
        row, panel = self.page.locator(f"#L{line}"), self.page.locator("#code")
        if "hl" not in (row.get_attribute("class") or "").split():
            return False
        r, p = row.bounding_box(), panel.bounding_box()
        top, bottom = max(p["y"], 0), min(p["y"] + p["height"], VIEW["height"])
        return top <= r["y"] and r["y"] + r["height"] <= bottom


_COUNT_RED = """async png => {
  const img = new Image(); img.src = "data:image/png;base64," + png; await img.decode();
  const canvas = document.createElement("canvas"); canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d"); ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, img.width, img.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 180 && d[i + 1] < 110 && d[i + 2] < 110) n++;
  return n;
}"""


def _example(site, name):
    return site / page_name(os.path.join(EXAMPLES, name + ".py"))


@files(EXAMPLE_FILES + CORPUS_FILES + CASE_FILES)
def test_page_loads_without_console_errors_and_draws_every_checked_model(page):
    assert page.errors == []
    for model in page.data["models"]:
        drawn = page.page.locator(f'.model[data-model="{model["name"]}"] svg').count()
        assert drawn == ("graph" in model), model["name"]
        assert "graph" in model or model["status"] != "checked", f"{model['name']} is checked but has no graph"


@files(CORPUS_FILES)
def test_a_clean_page_shows_nothing_red(page):
    assert page.data["findings"] == [] and page.placed() == []
    assert page.page.locator(".bad, .card").count() == 0
    assert page.page.locator("#findings .ok").is_visible()


@files(EXAMPLE_FILES + CASE_FILES)
def test_each_finding_is_red_where_it_lands_and_visible(page):
    placed = page.placed()
    assert sorted({i for i, _, _ in placed}) == list(range(len(page.data["findings"]))), "a finding with no node"
    for finding, model, node_id in placed:
        page.page.locator(f'.card[data-finding="{finding}"]').click()
        node = page.node(model, node_id, ".bad")
        assert node.count() == 1 and node.is_visible()
        box = node.bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= VIEW["height"] and 0 <= box["x"]
        assert page.red_pixels(box) > 200, f"finding {finding} on {model}/{node_id} is not red on screen"
    assert page.errors == []


@files(EXAMPLE_FILES + CASE_FILES)
def test_clicking_the_node_of_a_finding_shows_the_finding_line(page):
    for finding, model, node_id in page.placed():
        span = page.data["findings"][finding]["span"]
        page.node(model, node_id).click()
        assert page.node(model, node_id, ".sel").count() == 1
        if span:
            assert page.in_code_view(span[0]), f"finding {finding}: line {span[0]} not shown"
    assert page.errors == []


@files(EXAMPLE_FILES)
def test_clicking_a_node_shows_its_source_line(page):
    source = page.data["source"]
    for node in page.page.locator(".node:not(.group)").all()[:6]:
        node_id = node.get_attribute("data-id")
        model = node.locator("xpath=ancestor::div[@data-model]").get_attribute("data-model")
        record = next(m["graph"]["nodes"][node_id] for m in page.data["models"] if m["name"] == model)
        page.node(model, node_id).click()
        lit = page.page.locator("#code .ln.hl")
        assert lit.count() >= 1 and lit.first.is_visible()
        line = int(lit.first.get_attribute("id")[1:])
        assert line == record["line"] or any(page.data["findings"][i]["span"][0] == line for i in record["findings"])
        assert lit.first.text_content().endswith(source[line - 1]) and page.in_code_view(line)
        assert re.search(re.escape(record["name"]), page.page.locator("#details").text_content())


def test_a_residual_block_meets_at_an_add_node_each_input_labelled(tab, site):
    page = tab.load(_example(site, "resnet_small"))
    graph = next(m for m in page.data["models"] if m["name"] == "ResNetSmall")["graph"]
    add = next(dst for src, dst, _ in graph["links"] if graph["nodes"][src]["name"] == "layer1.bn2")
    assert graph["nodes"][add]["op"] == "add" and len([1 for link in graph["links"] if link[1] == add]) == 2
    box = page.node("ResNetSmall", add).bounding_box()
    labels = page.page.locator('.model[data-model="ResNetSmall"] .elabel').all()
    above = [label.text_content() for label in labels if _just_above(label.bounding_box(), box)]
    assert above == ["8×16×32×32", "8×16×32×32"]  # the branch and the shortcut, each at its own port


def _just_above(label, box) -> bool:
    inside = box["x"] <= label["x"] and label["x"] + label["width"] <= box["x"] + box["width"]
    return inside and box["y"] - 20 <= label["y"] + label["height"] <= box["y"] + 1


def test_hovering_a_node_shows_its_formula(tab, site):
    page = tab.load(_example(site, "lenet_bug"))
    conv1 = next(k for k, n in page.data["models"][0]["graph"]["nodes"].items() if n["name"] == "conv1")
    page.page.locator(f'.node[data-id="{conv1}"]').hover()
    assert "H: ⌊(32−3)/1⌋+1 = 30" in page.page.locator("#tip").text_content()
    assert page.page.locator("#tip").is_visible()


def test_repeated_blocks_show_folded_and_open_on_click(tab, tmp_path):
    path = tmp_path / "blocks.html"
    path.write_text(render_page(Report("m.py", (_blocks(32),), source="x = 1\n")), encoding="utf-8")
    page = tab.load(path)
    fold = page.page.locator(".node.group", has_text="layers × 32")
    assert fold.count() == 1 and page.page.locator('.node[data-id="r1"]').count() == 0
    fold.click()
    assert page.page.locator('.node[data-id="r1"]').count() == 1 and page.errors == []
    page.page.locator(".box text", has_text="layers × 32").click()
    assert page.page.locator('.node[data-id="r1"]').count() == 0


def test_dark_theme_follows_the_browser(tab, site):
    colours = {}
    for scheme in ("light", "dark"):
        tab.page.emulate_media(color_scheme=scheme)
        colours[scheme] = tab.load(_example(site, "lenet")).page.evaluate(
            "getComputedStyle(document.body).backgroundColor")
    tab.page.emulate_media(color_scheme="light")
    assert colours["light"] != colours["dark"]
