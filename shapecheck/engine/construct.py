"""How each model of a file is built, from what the code itself does (never guessed values).

For a class, strongest first: `--init` values, the hint `# shapecheck: init(n=3)` above the
class, `[tool.shapecheck] init` in pyproject.toml; else the construction sites of the file
(those whose built model is then called on example tensors first), the class's own defaults,
the sites of other files of the project, the sites of its documentation (README blocks,
docstring `>>>` examples), a config class with defaults for a `config` argument
(`GPT(GPTConfig())`), and, for a class no call builds, the calls of a same-named class of
another file whose arguments it takes (marked `borrowed`: an error at them proves nothing).
Each candidate is built on the meta device; the first that builds wins. A factory function is
built by calling it with its defaults; a module object was built by the loader.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import re
from dataclasses import dataclass, field

from ..errors import MissingPackage, UsageError, UserCodeStopped
from ..source import sites as source_sites
from . import discover, loader
from .build import BuildError, build, building, on_device
from .provenance import recorded

CONFIG_NAMES = re.compile(r"(config|cfg|conf|args|hparams|params|opt)$", re.I)
SIZE_NAMES = re.compile(r"(size|height|width|res|resolution|len|length|frames|shape)s?$", re.I)
NOT_SIZES = re.compile(r"batch|hidden|vocab|kernel|embed|patch|window|num_(?!frames)|dim|channel|head|latent|code"
                       r"|bn_|bottleneck|pool|step|group|stride|buffer|queue|beam", re.I)


@dataclass
class Construction:
    """How one model is built: `call` evaluated in the file's namespace, or (`call` empty)
    the class called with `init` values and its defaults."""

    source: str = ""  # init_source: "defaults", "factory", "call site train.py:41", "hint", ...
    call: str = ""
    init: dict = field(default_factory=dict)
    example: tuple | None = None  # inputs of the site's own example call
    model: object = None  # the model built while choosing (meta device)
    sites: dict = field(default_factory=dict)  # how each module of `model` was built (provenance.Built)
    handed_out: bool = False  # `model` was given to a check (later checks build their own)
    needs: tuple[tuple[str, str], ...] = ()  # names `call` reads from other files: (name, defining file)
    site_line: int = 0  # the line of the call site in the checked file (0: elsewhere or none)
    borrowed: str = ""  # "the arguments of README.md:9, written for `ViT` of vit.py" (another class)


@dataclass
class Context:
    """What choosing needs about the file: its source, namespace and the project's sites."""

    src: object
    namespace: dict
    load_index: object = None  # () -> source.project.SiteIndex or None; called at most once
    config_init: dict = field(default_factory=dict)  # class name -> {arg: value} from pyproject
    _index: object = None
    loaded: dict = field(default_factory=dict)  # other files of the project loaded for a call: path -> namespace

    @property
    def index(self):
        """The project's construction sites, read on first use (most models never need it)."""
        if self._index is None and self.load_index is not None:
            self._index, self.load_index = self.load_index(), None
        return self._index


def choose(spec, init: dict, strict: bool, context: Context, sites: bool = True) -> Construction:
    """The construction of `spec`; raises MissingArguments when nothing builds a class.
    `sites` False: only explicit values and defaults (the file builds the model itself)."""
    if spec.kind == "object":
        return Construction(source=f"call site {os.path.basename(spec.path)}:{spec.line}")
    if spec.kind == "factory":  # built when checked; a failure is the factory's own error
        return Construction("factory", f"{spec.name}()")
    explicit = _explicit(spec, init, context)
    if explicit is not None:
        discover.constructor_kwargs(spec.obj, explicit.init, strict)  # raises MissingArguments
        return explicit
    candidates = _candidates(spec, context) if sites else [Construction("defaults")]
    found = _first(candidates, spec, init, strict, context)
    if found is None:  # nothing builds: the class's own defaults, whose error the check reports
        discover.constructor_kwargs(spec.obj, init, strict)  # raises MissingArguments
        return Construction("defaults")
    return found


def _explicit(spec, init: dict, context: Context) -> Construction | None:
    """--init > hint > config: each gives single arguments, a stronger one wins per argument."""
    cli = {k.rpartition(".")[2] for k in init if "." not in k or k.startswith(spec.name + ".")}
    layers = [("config", context.config_init.get(spec.name) or {}), ("hint", _hint_init(spec, context.src))]
    values, source = {}, "cli" if cli else ""
    for name, layer in layers:
        values.update({f"{spec.name}.{k}": v for k, v in layer.items() if k not in cli})
        source = name if layer and not cli else source
    return Construction(source=source, init={**init, **values}) if source else None


def _hint_init(spec, src) -> dict:
    found = src.hint_for(spec.line, key="init(")
    if found is None:
        return {}
    return parse_init_hint(found[1])


def parse_init_hint(text: str) -> dict:
    """`init(n_channels=3, n_classes=2)` -> {"n_channels": 3, "n_classes": 2}."""
    match = re.search(r"\binit\((.*)\)", text)
    if not match:
        return {}
    try:
        call = ast.parse(f"f({match.group(1)})", mode="eval").body
        return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (SyntaxError, ValueError) as exc:
        raise UsageError(f"hint {text!r}: write init(NAME=VALUE, ...) with Python literals") from exc


def _candidates(spec, context: Context):
    """The constructions to try, in order; the project is read only when it comes to that."""
    here = source_sites.file_sites(context.src.tree, spec.path, frozenset({spec.name}))
    yield from (_from_site(s, "", _needs(s, context.index) if s.imports and context.index else ())
                for s in sorted(here, key=lambda s: s.example is None) if s.usable)
    nones = _none_defaults(spec.obj)
    index = context.index if nones else None  # the project is read first only for a None to replace
    elsewhere = index.sites_for(spec.name, spec.path) if index is not None else None
    replacing = [s for s in elsewhere or () if s.origin == "call" and s.usable and _passes(s, nones)]
    yield from (_from_site(s, index.root, _needs(s, index)) for s in replacing)  # real callers replace a None
    yield Construction("defaults")
    index = context.index
    if elsewhere is None:
        elsewhere = index.sites_for(spec.name, spec.path) if index is not None else []
    code = sorted((s for s in elsewhere if s.origin == "call" and s not in replacing), key=lambda s: s.example is None)
    docs = [s for s in elsewhere if s.origin == "docs"]
    yield from (_from_site(s, index.root, _needs(s, index)) for s in code + docs if s.usable)
    yield from filter(None, (_from_config(s, spec.obj, index.root) for s in elsewhere if s.origin == "config"))
    yield from _config_defaults(spec, context)
    if index is not None and not here and not elsewhere:
        yield from _namesakes(spec, index)


def _none_defaults(cls) -> frozenset[str]:
    """The constructor's parameters that default to None (a sub-block, a mask, a config)."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(p.name for p in params if p.default is None)


def _passes(site, names: frozenset[str]) -> bool:
    """Whether a call passes one of `names` by keyword with a value other than None."""
    try:
        node = ast.parse(site.text, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, ast.Call) and any(
        k.arg in names and not (isinstance(k.value, ast.Constant) and k.value.value is None) for k in node.keywords)


def _namesakes(spec, index):
    """The sites of another class of the same name in the project whose arguments this class
    takes too (every keyword one of its parameters, every required one given): variants of a
    model in sibling modules that the documentation builds only once."""
    seen = set()
    for site, origin in index.namesakes(spec.name, spec.path):
        if site.usable and site.text not in seen and _takes(spec.obj, site.text):
            seen.add(site.text)
            namesake = f"`{spec.name}` of {os.path.relpath(origin, index.root)}"
            found = _from_site(site, index.root, _needs(site, index))
            yield dataclasses.replace(found, source=f"{found.source}, for {namesake}, same name and parameters",
                                      call=site.text, borrowed=f"the arguments of {found.source}, written for {namesake}")


def _takes(cls, call: str) -> bool:
    """Whether `cls` can be called with the arguments of `call`, by name and count."""
    try:
        node = ast.parse(call, mode="eval").body
        signature = inspect.signature(cls)
    except (SyntaxError, TypeError, ValueError):
        return False
    if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
        return False
    named = {p.name for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    keywords = [k.arg for k in node.keywords]
    if None in keywords or not set(keywords) <= named:
        return False
    try:
        signature.bind(*node.args, **dict.fromkeys(keywords))
    except TypeError:
        return False
    return True


def _from_site(site, root: str, needs: tuple = ()) -> Construction:
    if site.text == f"{site.callee}()":  # `net = Net()`: the defaults, with the site's example
        return Construction("defaults", example=site.example)
    where = site.where(root)
    label = where if site.origin == "docs" else f"call site {where}"
    return Construction(label, site.text, example=site.example, needs=needs, site_line=0 if root else site.line)


def _from_config(site, cls, root: str) -> Construction | None:
    """A configuration file's mapping for `cls`: the entries its constructor takes (all of them
    when it takes **kwargs), if they cover its required parameters."""
    try:
        node = ast.parse(site.text, mode="eval").body
        signature = inspect.signature(cls)
    except (SyntaxError, TypeError, ValueError):
        return None
    params = signature.parameters.values()
    open_ended = any(p.kind == p.VAR_KEYWORD for p in params)
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    node.keywords = [k for k in node.keywords if open_ended or k.arg in named]
    try:
        signature.bind(**dict.fromkeys(k.arg for k in node.keywords))
    except TypeError:
        return None
    return Construction(f"config {site.where(root)}", ast.unparse(node))


def _needs(site, index) -> tuple[tuple[str, str], ...]:
    """The other classes a site's call builds (`MAE(encoder=ViT(...))`), with the project file
    that defines each."""
    found = ((name, index.defining_file(site, name, module)) for name, module in site.imports)
    return tuple((name, path) for name, path in found if path)


def _config_defaults(spec, context: Context) -> list[Construction]:
    """`GPT(config)`: the file's config class built with its own defaults."""
    try:
        params = inspect.signature(spec.obj).parameters
    except (TypeError, ValueError):
        return []
    required = [p for p in params.values() if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    configs = {n: c for n, c in context.namespace.items() if _config_class(c)}
    if len(required) != 1 or not configs:
        return []
    param = required[0]
    named = param.annotation if isinstance(param.annotation, str) else getattr(param.annotation, "__name__", "")
    if named not in configs:
        named = next(iter(configs)) if len(configs) == 1 and CONFIG_NAMES.search(param.name) else ""
    return [Construction("defaults", f"{spec.name}({param.name}={named}())")] if named else []


def _config_class(obj) -> bool:
    """A dataclass or NamedTuple of the user's file whose fields all have defaults."""
    if not isinstance(obj, type) or obj.__module__ != loader.USER_MODULE_NAME:
        return False
    if dataclasses.is_dataclass(obj):
        return all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
                   for f in dataclasses.fields(obj) if f.init)
    if issubclass(obj, tuple) and hasattr(obj, "_fields"):
        return len(getattr(obj, "_field_defaults", {})) == len(obj._fields)
    return False


def _first(candidates, spec, init, strict, context) -> Construction | None:
    """The first candidate that builds. None when none does; when one failed only for want of a
    package that is not installed, that is raised (MissingPackage) rather than a guess."""
    missing = None
    for candidate in candidates:
        try:
            candidate.model, candidate.sites = recorded(
                spec.path, lambda: build_with(candidate, spec, init, strict, context, "meta"))
        except (BuildError, discover.MissingArguments, UsageError, SystemExit):
            continue
        except MissingPackage as exc:
            missing = missing or exc
            continue
        except UserCodeStopped as exc:  # a side effect refused: this way of building is not for checking
            if exc.code != "SC910":
                raise
            continue
        return candidate
    if missing is not None:
        raise missing
    return None


def build_with(construction: Construction, spec, init: dict, strict: bool, context: Context, device: str):
    """The model built as `construction` says, on `device`. Raises BuildError."""
    if not construction.call:
        return build(spec, construction.init or init, device, strict)
    return evaluate(construction.call, context, spec, device, construction.needs)


def evaluate(call: str, context: Context, spec, device: str, needs: tuple = ()):
    """Evaluate a call written by `source.sites` in the namespace of the file defining the
    class, after the loader's safety check (no I/O, no training, no downloads). ``needs``:
    names the call reads from other files of the project (loaded the same way, skeleton only)."""
    import torch

    tree = ast.parse(call, mode="eval")
    namespace = _with_needs(context, needs)
    problem = loader.call_problem(tree.body, namespace, context.src)
    if problem:
        raise BuildError(f"building {spec.name} as {call} was not tried: it {problem}")
    try:
        with building(device):
            model = eval(compile(tree, spec.path, "eval"), namespace)
    except Exception as exc:
        raise BuildError(f"building {spec.name} as {call} failed: {type(exc).__name__}: {exc}",
                         loader.user_line(exc, spec.path), exc) from exc
    if not isinstance(model, torch.nn.Module):
        raise BuildError(f"{call} does not return an nn.Module")
    return on_device(model, device)


def _with_needs(context: Context, needs: tuple) -> dict:
    """The file's namespace, plus the names a call takes from other files of the project."""
    missing = [(name, path) for name, path in needs if name not in context.namespace]
    if not missing:
        return context.namespace
    namespace = dict(context.namespace)
    for name, path in missing:
        if path not in context.loaded:
            context.loaded[path] = _load_other(path)
        if name in context.loaded[path]:
            namespace[name] = context.loaded[path][name]
    return namespace


def _load_other(path: str) -> dict:
    try:
        return loader.load(loader.parse_file(path))
    except (Exception, MissingPackage):  # noqa: BLE001 - that file cannot be loaded: the call is not built
        return {}


def stated(construction: Construction | None, cls) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """What the construction's arguments say of the input, for input inference to try first:
    the sizes (`image_size=256`, `input_shape=(3, 128, 128)`, `img_size` defaulting to 32), in
    the order written, and the per-sample shapes (`img_shape=(3, 128, 128)`)."""
    values = _argument_values(construction, cls)
    named = [v for name, v in values.items() if SIZE_NAMES.search(name) and not NOT_SIZES.search(name)]
    sizes = [v for value in named for v in (value if isinstance(value, (tuple, list)) else (value,))
             if type(v) is int and 4 <= v <= 4096]
    shapes = [tuple(v) for v in named if isinstance(v, (tuple, list))
              and 2 <= len(v) <= 4 and all(type(d) is int and d > 0 for d in v)]
    return tuple(dict.fromkeys(sizes)), tuple(dict.fromkeys(shapes))


def option_sizes(cls, context: Context) -> tuple[int, ...]:
    """The whole-number command-line options the class's constructor reads, in the order read
    (`input_dim = opt.latent_dim + opt.n_classes + opt.code_dim`): the sizes of the vectors a
    forward may take (`forward(noise, labels, code)` concatenated before `Linear(input_dim, ...)`)."""
    import argparse

    found = [s for s in context.src.tree.body if isinstance(s, ast.ClassDef) and s.name == getattr(cls, "__name__", "")]
    init = [s for c in found for s in c.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
    options = {name for name, v in context.namespace.items() if isinstance(v, argparse.Namespace)}
    reads = sorted((n for f in init[:1] for n in ast.walk(f) if isinstance(n, ast.Attribute)
                    and isinstance(n.value, ast.Name) and n.value.id in options),
                   key=lambda n: (n.lineno, n.col_offset))
    values = (getattr(context.namespace[n.value.id], n.attr, None) for n in reads)
    return tuple(dict.fromkeys(v for v in values if type(v) is int and 1 <= v <= 4096))


def _argument_values(construction: Construction | None, cls) -> dict:
    """Parameter name -> value: those the construction passes, then the class's defaults."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    given = dict(construction.init) if construction is not None else {}
    given = {k.rpartition(".")[2]: v for k, v in given.items()}
    if construction is not None and construction.call:
        given.update(_literal_arguments(construction.call, list(params)))
    defaults = {n: p.default for n, p in params.items() if p.default is not p.empty and n not in given}
    return {**given, **defaults}


def _literal_arguments(call: str, names: list[str]) -> dict:
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return {}
    if not isinstance(node, ast.Call):
        return {}
    pairs = list(zip(names, node.args)) + [(k.arg, k.value) for k in node.keywords if k.arg]
    out = {}
    for name, value in pairs:
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, RecursionError):
            continue
    return out
