"""The html pages in a real headless Chromium (Debian's `chromium`, driven by Playwright).

Skipped when Playwright or the browser is missing. SHAPECHECK_CHROMIUM names another binary.
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

from shapecheck.diagnostics import Report  # noqa: E402
from shapecheck.frontends.cli import main  # noqa: E402
from shapecheck.render.html import page_name, render_page  # noqa: E402

from conftest import EXAMPLES  # noqa: E402
from test_html import _blocks  # noqa: E402

NAMES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(EXAMPLES, "*.py")))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory, worker):
    out = tmp_path_factory.mktemp("site")
    main([EXAMPLES, "--format", "html", "-o", str(out)], worker=worker)
    return out


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        running = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield running
        running.close()


class Page:
    """One loaded page, the console errors it logged and the data it draws."""

    def __init__(self, browser, path, scheme="light"):
        self.page = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme=scheme)
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(f"file://{path}")
        self.page.wait_for_selector("body[data-ready]", timeout=20000)
        self.data = json.loads(self.page.locator("#data").text_content())

    def placed(self):
        """(finding index, node id) for every finding that lands on a node."""
        return [(i, node_id) for m in self.data["models"] if "graph" in m
                for node_id, node in m["graph"]["nodes"].items() for i in node["findings"]]

    def red_pixels(self, box) -> int:
        shot = base64.b64encode(self.page.screenshot()).decode()
        return self.page.evaluate(_COUNT_RED, [shot, box])


_COUNT_RED = """async ([png, box]) => {
  const img = new Image(); img.src = "data:image/png;base64," + png; await img.decode();
  const canvas = document.createElement("canvas"); canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d"); ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(box.x, box.y, box.width, box.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 180 && d[i + 1] < 110 && d[i + 2] < 110) n++;
  return n;
}"""


def _open(browser, site, name, scheme="light"):
    return Page(browser, site / page_name(os.path.join(EXAMPLES, name + ".py")), scheme)


@pytest.mark.parametrize("name", NAMES)
def test_page_loads_without_console_errors(browser, site, name):
    page = _open(browser, site, name)
    assert page.errors == []
    assert page.page.locator(".model svg").count() >= 1
    page.page.close()


@pytest.mark.parametrize("name", NAMES)
def test_each_finding_is_red_where_it_lands_and_visible(browser, site, name):
    page = _open(browser, site, name)
    for finding, node_id in page.placed():
        page.page.locator(f'.card[data-finding="{finding}"]').click()
        node = page.page.locator(f'.node.bad[data-id="{node_id}"]')
        assert node.count() == 1 and node.is_visible()
        box = node.bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= 900
        assert page.red_pixels(box) > 200, f"finding {finding} on {node_id} is not red on screen"
    page.page.close()


def test_the_examples_with_bugs_have_red_nodes(browser, site):
    counts = {name: len(_open(browser, site, name).placed()) for name in ("lenet_bug", "lenet")}
    assert counts["lenet_bug"] == 2 and counts["lenet"] == 0


@pytest.mark.parametrize("name", NAMES)
def test_clicking_a_node_shows_its_source_line(browser, site, name):
    page = _open(browser, site, name)
    source = page.data["source"]
    for node in page.page.locator(".node:not(.group)").all()[:6]:
        node_id = node.get_attribute("data-id")
        record = next(m["graph"]["nodes"][node_id] for m in page.data["models"]
                      if "graph" in m and node_id in m["graph"]["nodes"])
        node = page.page.locator(f'.node[data-id="{node_id}"]').first
        node.click()
        lit = page.page.locator("#code .ln.hl")
        assert lit.count() >= 1 and lit.first.is_visible()
        line = int(lit.first.get_attribute("id")[1:])
        assert line == record["line"] or any(page.data["findings"][i]["span"][0] == line for i in record["findings"])
        assert lit.first.text_content().endswith(source[line - 1])
        assert re.search(re.escape(record["name"]), page.page.locator("#details").text_content())
    page.page.close()


def test_hovering_a_node_shows_its_formula(browser, site):
    page = _open(browser, site, "lenet_bug")
    conv1 = next(k for k, n in page.data["models"][0]["graph"]["nodes"].items() if n["name"] == "conv1")
    page.page.locator(f'.node[data-id="{conv1}"]').hover()
    assert "H: ⌊(32−3)/1⌋+1 = 30" in page.page.locator("#tip").text_content()
    assert page.page.locator("#tip").is_visible()


def test_repeated_blocks_show_folded_and_open_on_click(browser, tmp_path):
    path = tmp_path / "blocks.html"
    path.write_text(render_page(Report("m.py", (_blocks(32),), source="x = 1\n")), encoding="utf-8")
    page = Page(browser, path)
    fold = page.page.locator(".node.group", has_text="layers × 32")
    assert fold.count() == 1 and page.page.locator('.node[data-id="r1"]').count() == 0
    fold.click()
    assert page.page.locator('.node[data-id="r1"]').count() == 1 and page.errors == []
    page.page.locator(".box text", has_text="layers × 32").click()
    assert page.page.locator('.node[data-id="r1"]').count() == 0


def test_dark_theme_follows_the_browser(browser, site):
    colours = {scheme: _open(browser, site, "lenet", scheme).page.evaluate(
        "getComputedStyle(document.body).backgroundColor") for scheme in ("light", "dark")}
    assert colours["light"] != colours["dark"]
