"""Construction sites across a project: the other Python files and the documentation.

`project_sites(root)` reads every Python file below `root` (hidden folders, virtualenvs,
`build/` and `dist/` skipped) and the Markdown pages (README, docs/), and returns a
`SiteIndex`. `index.sites_for(name, path)` gives the sites that build the class `name` defined in
`path`: a site's callee is followed through its imports (`from unet import UNet`, package
`__init__` re-exports, star imports) to the file that defines it; a site whose callee is not
imported (a documentation block that imported it in an earlier block) counts when exactly
one file of the project defines that name. Nothing is run.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field, replace

from . import sites, values

MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg")
SKIP = frozenset({"build", "dist", "site-packages", "node_modules", "__pycache__", "venv", "env"})
MAX_FILES = 2000
MAX_BYTES = 512 * 1024
MAX_CONFIG_BYTES = 64 * 1024  # configuration files: larger ones are data, not settings


def project_root(path: str) -> tuple[str, bool]:
    """The nearest folder above `path` with .git, pyproject.toml, setup.py or setup.cfg; else
    the folder above the file's top package; else the file's folder. The flag says whether
    it is a project (read with its subfolders) or only the file's folder (read alone)."""
    folder = os.path.dirname(os.path.abspath(path))
    probe = folder
    while True:
        if any(os.path.exists(os.path.join(probe, marker)) for marker in MARKERS):
            return probe, True
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    top = folder
    while os.path.isfile(os.path.join(top, "__init__.py")) and os.path.dirname(top) != top:
        top = os.path.dirname(top)
    return top, top != folder


@dataclass
class SiteIndex:
    root: str
    sites: list[sites.Site] = field(default_factory=list)
    defined: dict[str, list[str]] = field(default_factory=dict)  # class name -> defining files
    trees: dict[str, ast.Module | None] = field(default_factory=dict, repr=False)
    members: list[sites.Site] = field(default_factory=list)  # calls inside class bodies

    def used_in(self, name: str, path: str) -> sites.Site | None:
        """A class body in another file of the project that builds the class `name` of `path`
        (`self.down1 = Down(64, 128)` in `UNet`): the first, in path and line order."""
        path = os.path.abspath(path)
        found = [s for s in self.members if s.callee == name and s.text != name
                 and os.path.abspath(s.path) != path and self._resolves(s, path)]
        return min(found, key=lambda s: (s.path, s.line), default=None)

    def built_into(self, name: str, path: str) -> sites.Site | None:
        """A site of another class whose call builds the class `name` of `path` as one of its
        arguments (`WWT(..., task_heads=[AutoencodingHead(...)])`): the first in path and line order."""
        path = os.path.abspath(path)
        call = re.compile(rf"\b{re.escape(name)}\(")
        found = [s for s in self.sites if s.callee != name and s.origin in ("call", "docs") and call.search(s.text)
                 and (os.path.abspath(s.path) == path or any(
                     n == name and self.defining_file(s, n, module) == path for n, module in s.imports))]
        return min(found, key=lambda s: (s.path, s.line), default=None)

    def sites_for(self, name: str, path: str) -> list[sites.Site]:
        """Sites elsewhere in the project that build the class `name` of the file `path`:
        code first, then documentation, each in path and line order."""
        path = os.path.abspath(path)
        found = [s for s in self.sites if s.callee == name and self._resolves(s, path)
                 and (s.origin == "docs" or os.path.abspath(s.path) != path)]
        return sorted(found, key=lambda s: (s.origin != "call", s.path, s.line))

    def namesakes(self, name: str, path: str) -> list[tuple[sites.Site, str]]:
        """Sites that build another class called `name`, defined in another file of the
        project (`SimpleViT` of simple_vit.py for the `SimpleViT` of simple_vit_with_qk_norm.py),
        each with that file: code first, then documentation, in path and line order."""
        path = os.path.abspath(path)
        found = [(s, self.origin_of(s)) for s in self.sites if s.callee == name and s.origin in ("call", "docs")]
        found = [(s, origin) for s, origin in found if origin and origin != path]
        return sorted(found, key=lambda pair: (pair[0].origin != "call", pair[0].path, pair[0].line))

    def origin_of(self, site: sites.Site) -> str | None:
        """The project file that defines the class a site calls (None when not known)."""
        if not site.imported_from:
            defined = self.defined.get(site.callee, [])
            return defined[0] if len(defined) == 1 else None
        return next((found for module in site.imported_from.split(";")
                     for found in [self.defining_file(site, site.callee, module)] if found), None)

    def _resolves(self, site: sites.Site, path: str) -> bool:
        if os.path.abspath(site.path) == path:  # the file's own docstrings
            return True
        if not site.imported_from:
            return self.defined.get(site.callee) == [path]
        base = site.path if site.origin != "docs" else os.path.join(self.root, "README.md")
        return any(self._defining(candidate, site.callee, 4) == path
                   for module in site.imported_from.split(";")
                   for candidate in self._module_files(base, module))

    def defining_file(self, site: sites.Site, name: str, module: str) -> str | None:
        """The project file that defines `name`, imported from `module` by the code of `site`."""
        base = site.path if site.origin != "docs" else os.path.join(self.root, "README.md")
        return next((found for candidate in self._module_files(base, module)
                     for found in [self._defining(candidate, name, 4)] if found), None)

    def _module_files(self, importer: str, module: str) -> list[str]:
        level = len(module) - len(module.lstrip("."))
        parts = [p for p in module.lstrip(".").split(".") if p]
        if level:
            bases = [os.path.dirname(os.path.abspath(importer))]
            for _ in range(level - 1):
                bases = [os.path.dirname(bases[0])]
        else:
            bases = [self.root, os.path.dirname(os.path.abspath(importer))]
        out = []
        for base in bases:
            stem = os.path.join(base, *parts)
            out += [f for f in (stem + ".py", os.path.join(stem, "__init__.py")) if os.path.isfile(f)]
        return out

    def _defining(self, path: str, name: str, depth: int) -> str | None:
        """The file that defines `name` as seen from `path` (following re-exports)."""
        tree = self._tree(path)
        if tree is None or depth < 0:
            return None
        for stmt in tree.body:
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef)) and stmt.name == name:
                return os.path.abspath(path)
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom) and any(a.name in (name, "*") and (a.asname or a.name) in (name, "*")
                                                       for a in stmt.names):
                module = "." * stmt.level + (stmt.module or "")
                for candidate in self._module_files(path, module):
                    found = self._defining(candidate, name, depth - 1)
                    if found:
                        return found
        return None

    def _tree(self, path: str) -> ast.Module | None:
        path = os.path.abspath(path)
        if path not in self.trees:
            self.trees[path] = _CACHE.tree(path)
        return self.trees[path]


def project_sites(root: str, subfolders: bool = True) -> SiteIndex:
    """Every construction site of a class defined in the project, in code and documentation
    (with `subfolders` False, only the files of `root` itself). A file unchanged since an
    earlier call in this process (same size and modification time) is not read again."""
    index = SiteIndex(os.path.abspath(root))
    files = _files(index.root, subfolders)
    for path in files["py"]:
        index.trees[path] = _CACHE.tree(path)
        for name in _CACHE.classes(path):
            index.defined.setdefault(name, []).append(path)
    names = frozenset(index.defined)
    stated = _command_lines(index.root, files["md"])
    for path in files["py"] + files["md"] + files["config"]:
        index.sites += _CACHE.sites(path, names, stated.get(path, {}))
    for path in files["py"]:
        index.members += _CACHE.members(path, names)
    return index


class _FileCache:
    """What was read of each file (its tree, its classes, its sites for a set of class names),
    kept while the file's size and modification time stay the same."""

    LIMIT = 4 * MAX_FILES

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}

    def _entry(self, path: str) -> dict:
        try:
            stat = os.stat(path)
            key = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = None
        entry = self.entries.get(path)
        if entry is None or entry["key"] != key or key is None:
            if len(self.entries) >= self.LIMIT:
                self.entries.clear()
            entry = self.entries[path] = {"key": key}
        return entry

    def tree(self, path: str) -> ast.Module | None:
        entry = self._entry(path)
        if "tree" not in entry:
            entry["tree"] = _parse(path)
        return entry["tree"]

    def classes(self, path: str) -> list[str]:
        tree = self.tree(path)
        return [s.name for s in tree.body if isinstance(s, ast.ClassDef)] if tree else []

    def sites(self, path: str, names: frozenset[str], options: dict[str, str]) -> list[sites.Site]:
        entry = self._entry(path)
        if entry.get("names") != (names, options):
            entry["names"], entry["sites"] = (names, options), _read_sites(path, names, self, options)
        return entry["sites"]


    def commands(self, page: str) -> list[tuple[str, dict[str, str]]]:
        entry = self._entry(page)
        if "commands" not in entry:
            entry["commands"] = sites.command_lines(_read(page))
        return entry["commands"]

    def members(self, path: str, names: frozenset[str]) -> list[sites.Site]:
        entry = self._entry(path)
        if entry.get("member_names") != names:
            tree = self.tree(path)
            entry["member_names"] = names
            entry["members"] = sites.member_uses(tree, path, names) if tree else []
        return entry["members"]


def _command_lines(root: str, pages: list[str]) -> dict[str, dict[str, str]]:
    """Script path -> the options of the first command line of the project's documentation
    that runs it (`python main.py --upscale_factor 3` in super_resolution/README.md runs
    super_resolution/main.py). Options a script requires take these values."""
    found: dict[str, dict[str, str]] = {}
    for page in pages:
        for script, options in _CACHE.commands(page):
            for base in (os.path.dirname(page), root):
                path = os.path.abspath(os.path.join(base, script))
                if os.path.isfile(path):
                    found.setdefault(path, options)
                    break
    return found


def _read_sites(path: str, names: frozenset[str], cache: _FileCache, options: dict[str, str]) -> list[sites.Site]:
    if _kind(path) == "config":
        text = _read(path)
        return sites.config_sites(text, path, names) if any(name in text for name in names) else []
    if not path.endswith(".py"):
        return _block_sites(sites.doc_blocks(_read(path)), path, names)
    tree = cache.tree(path)
    if tree is None:
        return []
    scope = values.Scope(command_line=options)
    return sites.file_sites(tree, path, names, scope=scope) + _block_sites(sites.docstring_blocks(tree), path, names)


_CACHE = _FileCache()


def _block_sites(blocks: list[tuple[int, str]], path: str, names: frozenset[str]) -> list[sites.Site]:
    """Sites of the code blocks of one page, read in order (names bound and imports made in an
    earlier block hold in later ones)."""
    found, scope, imports = [], values.Scope(), {}
    for offset, code in blocks:
        tree = sites.parse_block(code)
        if tree is None:
            continue
        imports.update(sites.imported_names(tree))
        for site in sites.file_sites(tree, path, names, "docs", offset, scope):
            module = site.imported_from or imports.get(site.callee, "")
            used = sites.imported_in(ast.parse(site.text, mode="eval").body, site.callee, imports)
            found.append(replace(site, imported_from=module, imports=used))
    return found


def _files(root: str, subfolders: bool) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"py": [], "md": [], "config": []}
    for here, dirs, names in os.walk(root):
        dirs[:] = [] if not subfolders else sorted(d for d in dirs if not d.startswith(".") and d not in SKIP
                         and not os.path.isfile(os.path.join(here, d, "pyvenv.cfg")))
        for name in sorted(names):
            path = os.path.join(here, name)
            kind = _kind(name)
            if kind and os.path.getsize(path) <= (MAX_CONFIG_BYTES if kind == "config" else MAX_BYTES):
                found[kind].append(os.path.abspath(path))
        if sum(map(len, found.values())) > MAX_FILES:
            break
    return found


def _kind(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".py"):
        return "py"
    if lower.endswith(".md"):
        return "md"
    return "config" if lower.endswith((".yaml", ".yml", ".json")) else ""


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _parse(path: str) -> ast.Module | None:
    text = _read(path)
    try:
        return ast.parse(text) if text else None
    except (SyntaxError, ValueError):
        return None
