"""Rewrite docs/html/<example>.png: each example's html page as headless Chromium shows it.

    python docs/screenshots.py [--chromium /usr/bin/chromium] [--dark]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)
sys.path.insert(0, ROOT)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--dark", action="store_true", help="the dark theme")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from shapecheck.api import check_file
    from shapecheck.render.html import render_page

    out = os.path.join(DOCS, "html")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=FLAGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 860}, color_scheme="dark" if args.dark else "light")
        for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.py"))):
            name = os.path.basename(path)[:-3]
            page = os.path.join(folder, name + ".html")
            with open(page, "w", encoding="utf-8") as handle:
                handle.write(render_page(check_file(os.path.relpath(path, ROOT))))
            tab.goto(f"file://{page}")
            tab.wait_for_selector("body[data-ready]")
            tab.screenshot(path=os.path.join(out, name + ("-dark" if args.dark else "") + ".png"))
            print(os.path.join("docs", "html", name + ".png"))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
