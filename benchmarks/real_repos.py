"""shapecheck on real repositories, as a new user meets it: no flags, no configuration.

    python benchmarks/real_repos.py DIR... [--jobs 2] [--timeout 60] [--json OUT]

Each DIR holds repositories, one per subfolder (a DIR with no subfolders is one repository).
Every Python file that defines an nn.Module subclass is checked with
`shapecheck --format json FILE` in a subprocess of its own (a timeout is recorded as such).
Hidden folders, virtualenvs, build/ and dist/ are skipped. Whether a file defines a model is
decided from its syntax tree: a class whose base is `nn.Module` (any spelling ending in
`Module`) or a class of the same repository that is one.

Printed per repository and in total: model entries found and the classes they build (a class,
its factory functions and its module objects count once; building blocks and base classes
reported as part of their models, and classes with no `forward`, are not counted), classes checked with no configuration (by any of its entries), partial, not checked by
diagnostic code (SC903 needs-input-shape, SC904 needs-constructor-args, SC905 build failed,
...), error findings, files that crashed or timed out, and the slowest file. A second section
lists every error finding with file:line, code and message: the repositories work, so each
one is a false alarm.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = frozenset({"build", "dist", "site-packages", "node_modules", "__pycache__",
                       "venv", "env", ".venv"})
NOT_MODELS = ("checked as part of ", "it has no `forward`")  # building blocks, bases, classes never called


@dataclass
class FileResult:
    repo: str
    path: str
    seconds: float
    models: list = field(default_factory=list)  # JSON model entries
    diagnostics: list = field(default_factory=list)  # JSON diagnostic entries
    failure: str = ""  # "timeout", "crash: ...", "no models"


# -- which files ----------------------------------------------------------------------------
def repositories(dirs: list[str]) -> list[tuple[str, str]]:
    """(name, folder) of every repository under the given folders."""
    found = []
    for top in dirs:
        subs = sorted(d for d in os.listdir(top) if _walkable(top, d))
        if not subs:
            found.append((os.path.basename(os.path.abspath(top)), top))
        found.extend((sub, os.path.join(top, sub)) for sub in subs)
    return found


def _walkable(parent: str, name: str) -> bool:
    path = os.path.join(parent, name)
    return (os.path.isdir(path) and not name.startswith(".") and name not in SKIP_DIRS
            and not os.path.isfile(os.path.join(path, "pyvenv.cfg")))


def python_files(folder: str) -> list[str]:
    out = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _walkable(here, d))
        out.extend(os.path.join(here, f) for f in sorted(files) if f.endswith(".py"))
    return out


def model_files(folder: str) -> list[str]:
    """The repository's files that define a subclass of nn.Module (directly or through a class
    of the same repository that does)."""
    classes = {path: _class_bases(path) for path in python_files(folder)}
    modules = {"Module"}
    grown = True
    while grown:
        before = len(modules)
        for defined in classes.values():
            modules.update(name for name, bases in defined if bases & modules)
        grown = len(modules) > before
    return [path for path, defined in classes.items() if any(bases & modules for _, bases in defined)]


def _class_bases(path: str) -> list[tuple[str, set[str]]]:
    try:
        with open(path, "rb") as handle:
            tree = ast.parse(handle.read())
    except (SyntaxError, ValueError, OSError):
        return []
    return [(node.name, {_last_name(base) for base in node.bases})
            for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def _last_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


# -- running shapecheck ---------------------------------------------------------------------
def check(repo: str, path: str, timeout: float, python: str) -> FileResult:
    paths = [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]  # the repositories' own
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), NO_COLOR="1")  # packages, where given
    command = [python, "-m", "shapecheck.frontends.cli", "--format", "json", path]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=os.path.dirname(path) or ".")
    except subprocess.TimeoutExpired:
        return FileResult(repo, path, time.perf_counter() - start, failure="timeout")
    seconds = time.perf_counter() - start
    result = FileResult(repo, path, seconds)
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        message = (done.stderr.strip().splitlines() or ["no output"])[-1]
        result.failure = "no models" if "no nn.Module model found" in message else f"crash: {message}"
        return result
    for report in _reports(document):
        result.models.extend(report.get("models", []))
        result.diagnostics.extend(report.get("diagnostics", []))
    return result


def _reports(document) -> list[dict]:
    """One file's report, or several (a document for a whole run lists them under "files")."""
    if isinstance(document, dict) and "models" in document:
        return [document]
    if isinstance(document, dict):
        document = document.get("files") or document.get("reports") or []
    return [d for d in document if isinstance(d, dict)] if isinstance(document, list) else []


# -- tables ---------------------------------------------------------------------------------
@dataclass
class Tally:
    files: int = 0
    models: int = 0  # classes
    entries: int = 0  # model entries of the reports (factories and module objects included)
    checked: int = 0
    partial: int = 0
    not_checked: Counter = field(default_factory=Counter)
    errors: int = 0
    failures: Counter = field(default_factory=Counter)
    slowest: tuple[float, str] = (0.0, "")

    def add(self, result: FileResult, root: str) -> None:
        self.files += 1
        if result.failure:
            self.failures[result.failure.split(":")[0]] += 1
        for entries in model_classes(result).values():
            self.models += 1
            self.entries += len(entries)
            statuses = {model.get("status") for model in entries}
            if "checked" in statuses:
                self.checked += 1
            elif "partial" in statuses:
                self.partial += 1
            else:
                self.not_checked[_not_checked_code(entries[0], result.diagnostics)] += 1
        self.errors += sum(d.get("severity") == "error" for d in result.diagnostics)
        self.slowest = max(self.slowest, (result.seconds, os.path.relpath(result.path, root)))


def model_classes(result: FileResult) -> dict[tuple[str, str], list[dict]]:
    """A file's model entries grouped by the class they build (a class and its factories, a
    class and a module object of it count once); building blocks left out."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for model in result.models:
        if not (model.get("reason") or "").startswith(NOT_MODELS):
            key = (model.get("class_path") or result.path, model.get("class") or model.get("name"))
            groups.setdefault(key, []).append(model)
    return groups


def _not_checked_code(model: dict, diagnostics: list[dict]) -> str:
    codes = [d["code"] for d in diagnostics if d.get("model") == model.get("name")
             and d.get("code", "").startswith("SC9")]
    return codes[0] if codes else "other"


def tallies(results: list[FileResult], roots: dict[str, str]) -> dict[str, Tally]:
    table: dict[str, Tally] = {}
    for result in results:
        table.setdefault(result.repo, Tally()).add(result, roots[result.repo])
        table.setdefault("TOTAL", Tally()).add(result, os.path.dirname(roots[result.repo]))
    total = table.pop("TOTAL", Tally())
    return {**dict(sorted(table.items())), "TOTAL": total}


def render(table: dict[str, Tally]) -> str:
    codes = sorted({code for tally in table.values() for code in tally.not_checked})
    head = ["repository", "files", "entries", "classes", "checked", "%", "partial",
            *(f"not:{c}" for c in codes), "errors", "timeout", "crash", "slowest file"]
    rows = [head]
    for name, t in table.items():
        share = f"{100 * t.checked / t.models:.0f}" if t.models else "-"
        slow = f"{t.slowest[0]:.1f}s {t.slowest[1]}" if t.slowest[1] else "-"
        rows.append([name, t.files, t.entries, t.models, t.checked, share, t.partial,
                     *(t.not_checked.get(c, 0) for c in codes), t.errors,
                     t.failures.get("timeout", 0), t.failures.get("crash", 0), slow])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def findings(results: list[FileResult], roots: dict[str, str]) -> list[str]:
    lines = []
    for result in results:
        where = os.path.relpath(result.path, os.path.dirname(roots[result.repo]))
        if result.failure.startswith(("crash", "timeout")):
            lines.append(f"{where}: {result.failure}")
        for d in result.diagnostics:
            if d.get("severity") == "error":
                lines.append(f"{where}:{d.get('line')}: {d.get('code')} {d.get('message')}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", metavar="DIR")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--json", metavar="OUT", help="also write every file's result here")
    parser.add_argument("--tally", metavar="IN", help="print the tables of a --json file; run nothing")
    args = parser.parse_args(argv)
    repos = repositories(args.dirs)
    roots = dict(repos)
    start = time.perf_counter()
    if args.tally:
        with open(args.tally, encoding="utf-8") as handle:
            results = [FileResult(**item) for item in json.load(handle) if item["repo"] in roots]
    else:
        work = [(name, path) for name, folder in repos for path in model_files(folder)]
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = list(pool.map(lambda item: check(*item, args.timeout, args.python), work))
        if args.json:  # kept before the tables, which --tally can print again
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump([vars(r) for r in results], handle, indent=1)
    print(render(tallies(results, roots)))
    print(f"\n{len(results)} files in {time.perf_counter() - start:.0f} s "
          f"({args.jobs} at a time, timeout {args.timeout:.0f} s)")
    print("\nError findings (false alarms: these repositories work), crashes and timeouts:")
    print("\n".join(f"  {line}" for line in findings(results, roots)) or "  none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
