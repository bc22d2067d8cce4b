"""Fuzzing shapecheck through its command line, with real torch as the oracle.

Shared by the fast profile (`tests/test_fuzz.py`) and the long one (`benchmarks/fuzz.py`).

- `model_files()`: a hypothesis strategy for model files: a random stack of layers and reshapes
  with an input hint. While it draws, every step is run on the meta device, so most steps fit
  the shape they receive and some (about one in six) do not.
- `mutants()`: a strategy for random token edits (delete, duplicate, swap, change a number or an
  identifier) of the files in examples/ and tests/models/cases/.
- `run_cli()`: one file through `cli.main(argv, worker=...)`, in this process, with stdout and
  stderr captured; `Outcome.problems()`: a traceback, an exit code outside 0/1/2, an internal
  error, a check that ran past its deadline.
- `run_real()` and `disagreement()`: the oracle for generated files. No ERROR and the model
  checked: torch must run it at the hinted input. An ERROR of a shape rule (SC1xx-SC5xx) or
  SC905: torch must fail, except the silent bugs: SC202 (a reshape changed the batch) and SC402
  (a loss broadcast its input against its target) must show as such in the real run. When every
  error has a SAFE fix, the file as `--fix` writes it must run.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import math
import os
import re
import time
import tokenize
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import strategies as st
from torch.overrides import TorchFunctionMode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py"))
               + glob.glob(os.path.join(ROOT, "tests", "models", "cases", "*.py")))
TIMEOUT = 10.0  # --timeout per model in fuzz runs
MAX_ELEMENTS = 60_000  # no step is added once a sample tensor is this large (real runs stay small)
SILENT = frozenset({"SC202", "SC204", "SC205", "SC402"})  # errors torch does not raise: the output is wrong instead


# -- generated model files -----------------------------------------------------------------
@dataclass(frozen=True)
class Generated:
    """A generated model file: its source and the shapes of its hint (a target for a loss)."""

    source: str
    inputs: tuple[tuple[tuple[int, ...], str], ...]  # (shape, dtype) per forward argument


def _fit(draw, value: int, low: int = 1, high: int = 12) -> int:
    """Usually `value` (the size that fits); now and then another size: a likely shape bug."""
    return value if draw(st.integers(0, 3)) else draw(st.integers(low, high))


def _rank(shape) -> int:
    return len(shape) - 2  # spatial dimensions of an (N, C, ...) tensor


def _conv(draw, shape) -> tuple[str, str]:
    d, k = _rank(shape), draw(st.integers(1, 5))
    extra = draw(st.sampled_from(["", f", stride={draw(st.integers(2, 3))}", f", padding={draw(st.integers(1, 2))}",
                                  f", dilation={draw(st.integers(2, 3))}", ", padding='same'", ", bias=False"]))
    layer = f"nn.Conv{d}d({_fit(draw, shape[1])}, {draw(st.integers(1, 8))}, {k}{extra})"
    return layer, "x = self.{name}(x)"


def _conv_transpose(draw, shape) -> tuple[str, str]:
    d, stride = _rank(shape), draw(st.integers(1, 3))
    extra = draw(st.sampled_from(["", ", padding=1", f", output_padding={draw(st.integers(0, 2))}"]))
    layer = f"nn.ConvTranspose{d}d({_fit(draw, shape[1])}, {draw(st.integers(1, 6))}, {draw(st.integers(1, 4))}, " \
            f"stride={stride}{extra})"
    return layer, "x = self.{name}(x)"


def _pool(draw, shape) -> tuple[str, str]:
    d, k = _rank(shape), draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["Max", "Avg", "AdaptiveAvg", "AdaptiveMax"]))
    if kind.startswith("Adaptive"):
        return f"nn.{kind}Pool{d}d({draw(st.integers(1, 4))})", "x = self.{name}(x)"
    extra = draw(st.sampled_from(["", f", stride={draw(st.integers(1, 3))}", f", padding={draw(st.integers(1, 2))}",
                                  ", ceil_mode=True"]))
    return f"nn.{kind}Pool{d}d({k}{extra})", "x = self.{name}(x)"


def _functional_pool(draw, shape) -> tuple[None, str]:
    return None, f"x = F.max_pool{_rank(shape)}d(x, {draw(st.integers(1, 3))})"


def _batch_norm(draw, shape) -> tuple[str, str]:
    d = max(1, _rank(shape))
    return f"nn.BatchNorm{d}d({_fit(draw, shape[1])})", "x = self.{name}(x)"


def _norm_last(draw, shape) -> tuple[str, str]:
    kind = draw(st.sampled_from(["LayerNorm", "GroupNorm"]))
    if kind == "GroupNorm" and len(shape) > 2:
        return f"nn.GroupNorm({draw(st.sampled_from([1, 2]))}, {_fit(draw, shape[1])})", "x = self.{name}(x)"
    return f"nn.LayerNorm({_fit(draw, shape[-1])})", "x = self.{name}(x)"


def _linear(draw, shape) -> tuple[str, str]:
    return f"nn.Linear({_fit(draw, shape[-1], high=64)}, {draw(st.integers(1, 24))})", "x = self.{name}(x)"


def _recurrent(draw, shape) -> tuple[str, str]:
    kind = draw(st.sampled_from(["LSTM", "GRU", "RNN"]))
    extra = draw(st.sampled_from(["", ", num_layers=2", ", bidirectional=True"]))
    first = draw(st.sampled_from([", batch_first=True", ""]))
    return f"nn.{kind}({_fit(draw, shape[-1])}, {draw(st.integers(1, 12))}{first}{extra})", "x, _ = self.{name}(x)"


def _attention(draw, shape) -> tuple[str, str]:
    embed = _fit(draw, shape[-1])
    heads = draw(st.sampled_from([h for h in range(1, 5) if embed % h == 0] if draw(st.integers(0, 5)) else [3]))
    return f"nn.MultiheadAttention({embed}, {heads}, batch_first=True)", "x, _ = self.{name}(x, x, x)"


def _embedding(draw, shape) -> tuple[str, str]:
    return f"nn.Embedding({draw(st.integers(1, 20))}, {draw(st.integers(1, 12))})", "x = self.{name}(x)"


def _activation(draw, shape) -> tuple[str | None, str]:
    layer = draw(st.sampled_from(["nn.ReLU()", "nn.GELU()", "nn.Tanh()", "nn.Sigmoid()", "nn.LeakyReLU(0.1)",
                                  f"nn.Softmax(dim={draw(st.integers(-1, len(shape) - 1))})", "F.relu", "torch.tanh"]))
    if not layer.endswith(")"):
        return None, f"x = {layer}(x)"
    return layer, "x = self.{name}(x)"


def _dropout(draw, shape) -> tuple[str, str]:
    kind = "Dropout2d" if len(shape) == 4 and draw(st.booleans()) else "Dropout"
    return f"nn.{kind}({draw(st.sampled_from([0.0, 0.1, 0.5]))})", "x = self.{name}(x)"


def _flatten(draw, shape) -> tuple[str | None, str]:
    form = draw(st.sampled_from(["nn.Flatten()", f"nn.Flatten({draw(st.integers(0, 2))}, -1)",
                                 "torch.flatten(x, 1)", "x.flatten(1)", "x.view(x.size(0), -1)",
                                 "x.reshape(x.shape[0], -1)"]))
    return (form, "x = self.{name}(x)") if form.startswith("nn.") else (None, f"x = {form}")


def _features(shape) -> int:
    return math.prod(shape[1:])


def _view(draw, shape) -> tuple[None, str]:
    """A reshape of the whole tensor: per sample (fits), with -1 (may mix the batch) or hard-coded."""
    features = _features(shape)
    divisors = [k for k in range(1, features * shape[0] + 1) if (features * shape[0]) % k == 0]
    k = draw(st.sampled_from([features, features, draw(st.sampled_from(divisors)), draw(st.integers(1, 40))]))
    return None, draw(st.sampled_from([f"x = x.view(-1, {k})", f"x = x.reshape(-1, {k})",
                                       f"x = x.view({shape[0]}, {k})"]))


def _unflatten(draw, shape) -> tuple[None, str]:
    """From features back to an (N, C, ...) map: two or three factors of the sample's size."""
    features = _features(shape)
    first = draw(st.sampled_from([c for c in range(1, min(features, 8) + 1) if features % c == 0]))
    rest = features // first
    second = draw(st.sampled_from([h for h in range(1, rest + 1) if rest % h == 0]))
    sizes = [first, second, rest // second][: draw(st.integers(2, 3))]
    if len(sizes) == 2:
        sizes[1] = rest
    sizes[-1] = _fit(draw, sizes[-1])
    return None, f"x = x.view(x.size(0), {', '.join(map(str, sizes))})"


def _permute(draw, shape) -> tuple[None, str]:
    rank = len(shape)
    if rank < 3 or not draw(st.integers(0, 5)):
        return None, f"x = x.transpose({draw(st.integers(0, rank))}, {draw(st.integers(-1, rank - 1))})"
    rest = draw(st.permutations(list(range(1, rank))))
    return None, f"x = x.permute(0, {', '.join(map(str, rest))})"


def _cat(draw, shape) -> tuple[None, str]:
    rank = len(shape)
    dim = draw(st.integers(-rank, rank))
    if draw(st.booleans()) or rank < 2:
        return None, f"x = torch.cat([x, x], dim={dim})"
    cut = draw(st.integers(1, rank - 1))
    return None, f"x = torch.cat([x, x.narrow({cut}, 0, {max(1, shape[cut] // 2)})], dim={dim})"


def _pointwise(draw, shape) -> tuple[None, str]:
    return None, draw(st.sampled_from(["x = x + 1", "x = x * x", "x = x.contiguous()", "x = x.unsqueeze(1).squeeze(1)",
                                       f"x = x.unsqueeze({draw(st.integers(0, len(shape)))})", "x = x.squeeze()"]))


def _reduce(draw, shape) -> tuple[None, str]:
    dim = draw(st.integers(1, len(shape) - 1))
    return None, draw(st.sampled_from([f"x = x.mean(dim={dim})", f"x = x.sum({dim}, keepdim=True)",
                                       f"x = x.amax(-1)", f"x = x[:, 0]", f"x = x[:, :{max(1, shape[1] // 2)}]"]))


def _upsample(draw, shape) -> tuple[str | None, str]:
    if draw(st.booleans()):
        return None, f"x = F.interpolate(x, scale_factor={draw(st.sampled_from([2, 0.5, 3]))})"
    return f"nn.Upsample(scale_factor=2, mode={draw(st.sampled_from(['nearest', 'bilinear']))!r})", \
        "x = self.{name}(x)"


def _grouped_conv(draw, shape) -> tuple[str, str]:
    groups = draw(st.sampled_from([g for g in (1, 2, 3, 4) if shape[1] % g == 0] + [3]))
    return (f"nn.Conv{_rank(shape)}d({_fit(draw, shape[1])}, {groups * draw(st.integers(1, 3))}, "
            f"{draw(st.integers(1, 3))}, padding=1, groups={groups})"), "x = self.{name}(x)"


def _residual(draw, shape) -> tuple[str, str]:
    """x plus a convolution of x: the sizes match only when the kernel keeps them."""
    k = draw(st.sampled_from([1, 3, 3, 5, 2]))
    return (f"nn.Conv{_rank(shape)}d({shape[1]}, {_fit(draw, shape[1])}, {k}, padding={k // 2})",
            "x = x + self.{name}(x)")


def _chunk(draw, shape) -> tuple[None, str]:
    """Two halves joined again: along another dimension they differ when the size is odd."""
    dim, other = draw(st.integers(1, len(shape) - 1)), draw(st.integers(1, len(shape) - 1))
    return None, f"a, b = x.chunk(2, dim={dim}); x = torch.cat([a, b], dim={other})"


def _matmul(draw, shape) -> tuple[None, str]:
    return None, draw(st.sampled_from(["x = x @ x.transpose(-1, -2)", "x = torch.matmul(x, x)",
                                       "x = torch.bmm(x, x.transpose(1, 2))"]))


def _sequential(draw, shape) -> tuple[str, str]:
    inner = _conv(draw, shape)[0] if len(shape) > 2 else _linear(draw, shape)[0]
    return f"nn.Sequential({inner}, nn.ReLU(), nn.Identity())", "x = self.{name}(x)"


_ANY = [_activation, _dropout, _flatten, _view, _permute, _cat, _pointwise, _reduce, _chunk]
_MAPS = [_conv, _conv, _conv_transpose, _pool, _pool, _functional_pool, _batch_norm, _norm_last, _upsample,
         _grouped_conv, _residual, _sequential]
_STEPS = {
    2: [_linear, _linear, _linear, _batch_norm, _unflatten, _norm_last, _sequential] + _ANY,
    3: _MAPS + [_linear, _recurrent, _attention, _matmul] + _ANY,
    4: _MAPS + [_linear, _matmul] + _ANY,
    5: [_conv, _conv_transpose, _pool, _batch_norm, _upsample, _residual] + _ANY,
}
_STARTS = {  # family: (shape strategy, dtype)
    "1d": st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(4, 24)),
    "2d": st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(4, 16), st.integers(4, 16)),
    "3d": st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 6), st.integers(2, 6), st.integers(2, 6)),
    "seq": st.tuples(st.integers(1, 4), st.integers(2, 8), st.integers(2, 16)),
    "vec": st.tuples(st.integers(1, 4), st.integers(2, 48)),
    "tokens": st.tuples(st.integers(1, 4), st.integers(2, 10)),
}


class _MetaStack:
    """The layers drawn so far, run on the meta device to know the shape the next one gets.

    A step that does not fit its input is kept only while `breaks` allows (then the shape is
    no longer followed: later steps are drawn for the shape it was meant to give); otherwise it
    is dropped and another one is drawn. So about half of the files run and half have a bug.
    """

    def __init__(self, shape: tuple[int, ...], dtype: str, breaks: int) -> None:
        self.shape, self.breaks = shape, breaks
        self.x = torch.empty(shape, dtype=getattr(torch, dtype), device="meta")
        self.layers = SimpleNamespace()
        self.init: list[str] = []
        self.forward: list[str] = []

    def add(self, layer: str | None, line: str) -> bool:
        """Append the step; False (and nothing appended) when it breaks and no break is left."""
        name = f"l{len(self.forward)}"
        line = line.format(name=name)
        if self.x is not None and not self._run(name, layer, line):
            if not self.breaks:
                return False
            self.breaks, self.x = self.breaks - 1, None
        if layer is not None:
            self.init.append(f"self.{name} = {layer}")
        self.forward.append(line)
        return True

    def _run(self, name: str, layer: str | None, line: str) -> bool:
        env = {"torch": torch, "nn": nn, "F": F, "x": self.x, "self": self.layers}
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if layer is not None:
                    setattr(self.layers, name, eval(layer, env))
                exec(line, env)
        except Exception:  # the step does not fit the shape it gets
            return False
        out = env["x"]
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            return False
        self.x, self.shape = out, tuple(out.shape)
        return True


def _loss(draw, stack: _MetaStack) -> tuple[str, tuple[tuple[int, ...], str]]:
    """A loss against a second input: a fitting target, a broadcasting one, or class indices."""
    shape = stack.shape
    kind = draw(st.sampled_from(["same", "drop_last", "classes", "other"]))
    call = draw(st.sampled_from(["(x, y)", "(input=x, target=y)", "(x, y, reduction='sum')"]))
    if kind == "classes":
        return f"return F.cross_entropy{call}", ((shape[0],) + tuple(shape[2:]), "int64")
    target = {"same": shape, "drop_last": shape[:-1] or shape,
              "other": tuple(draw(st.integers(1, 6)) for _ in shape)}[kind]
    return f"return F.{draw(st.sampled_from(['mse_loss', 'l1_loss', 'smooth_l1_loss']))}{call}", (target, "float32")


@st.composite
def model_files(draw) -> Generated:
    """A model file: a stack of 1-6 layers and reshapes, an input hint, sometimes a loss."""
    family = draw(st.sampled_from(sorted(_STARTS)))
    shape = draw(_STARTS[family])
    stack = _MetaStack(shape, "int64" if family == "tokens" else "float32", draw(st.sampled_from([0, 1, 1])))
    if family == "tokens":
        stack.add(*_embedding(draw, shape))
    for _ in range(draw(st.integers(1, 6))):
        if math.prod(stack.shape) > MAX_ELEMENTS or len(stack.shape) not in _STEPS:
            break
        for _attempt in range(3):
            if stack.add(*draw(st.sampled_from(_STEPS[len(stack.shape)]))(draw, stack.shape)):
                break
    inputs = ((shape, "int64" if family == "tokens" else "float32"),)
    ending = "return x"
    if draw(st.integers(0, 4)) == 0:
        ending, target = _loss(draw, stack)
        inputs += (target,)
    return Generated(_model_source(stack, inputs, ending, draw(st.sampled_from(STYLES))), inputs)


def hint(inputs) -> str:
    def one(shape, dtype):
        items = [str(n) for n in shape] + ([f'"{dtype}"'] if dtype != "float32" else [])
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    body = one(*inputs[0]) if len(inputs) == 1 else "(" + ", ".join(one(*i) for i in inputs) + ")"
    return f"# shapecheck: input={body}"


STYLES = ("plain", "parameters", "helpers", "sequential", "module_list")
_FIRST_INT = re.compile(r"^(nn\.\w+\()(\d+)(?=[,)])")


def _model_source(stack: _MetaStack, inputs, ending: str, style: str) -> str:
    """The file; `style` only changes how the layers are written (constructor parameters with
    defaults, helper functions, one nn.Sequential or nn.ModuleList), never what they compute."""
    init, forward, helpers, signature = list(stack.init), list(stack.forward), [], "self"
    if style in ("sequential", "module_list"):
        init, forward = _containers(init, forward, style)
    elif style == "parameters":
        init, signature = _parameters(init)
    elif style == "helpers":
        init, helpers = _helpers(init)
    arguments = "x, y" if len(inputs) > 1 else "x"
    lines = ["import torch", "import torch.nn as nn", "import torch.nn.functional as F", "", ""] + helpers
    lines += [hint(inputs), "class Net(nn.Module):", f"    def __init__({signature}):", "        super().__init__()"]
    lines += [f"        {line}" for line in init]
    lines += ["", f"    def forward(self, {arguments}):"] + [f"        {line}" for line in forward]
    return "\n".join(lines + [f"        {ending}", ""])


_MODULE_STEP = re.compile(r"x = self\.(l\d+)\(x\)")


def _containers(init: list[str], forward: list[str], style: str) -> tuple[list[str], list[str]]:
    """Each run of two or more layers called one after the other on x becomes one container."""
    layers = dict(line[5:].split(" = ", 1) for line in init)
    out_init, out_forward, run = [], [], []
    for line in forward + [""]:
        match = _MODULE_STEP.fullmatch(line)
        if match:
            run.append(match.group(1))
            continue
        block = _container([layers[name] for name in run], f"b{len(out_init)}", style) if len(run) > 1 else None
        out_init += block[0] if block else [f"self.{name} = {layers[name]}" for name in run]
        out_forward += block[1] if block else [f"x = self.{name}(x)" for name in run]
        out_init += [f"self.{name} = {layers[name]}" for name in re.findall(r"self\.(l\d+)", line)]
        out_forward += [line] if line else []
        run = []
    return out_init, out_forward


def _container(layers: list[str], name: str, style: str) -> tuple[list[str], list[str]]:
    if style == "sequential":
        return [f"self.{name} = nn.Sequential("] + [f"    {layer}," for layer in layers] + [")"], \
            [f"x = self.{name}(x)"]
    return ([f"self.{name} = nn.ModuleList(["] + [f"    {layer}," for layer in layers] + ["])"],
            [f"for block in self.{name}:", "    x = block(x)"])


def _parameters(init: list[str]) -> tuple[list[str], str]:
    """The first size of each layer becomes a constructor parameter with that default."""
    defaults, out = [], []
    for line in init:
        target, layer = line.split(" = ", 1)
        match = _FIRST_INT.match(layer)
        if match:
            defaults.append(f"n{len(defaults)}={match.group(2)}")
            layer = f"{match.group(1)}n{len(defaults) - 1}{layer[match.end():]}"
        out.append(f"{target} = {layer}")
    return out, ", ".join(["self"] + defaults)


def _helpers(init: list[str]) -> tuple[list[str], list[str]]:
    """Each layer made by a function of its own, called from __init__."""
    helpers, out = [], []
    for line in init:
        target, layer = line.split(" = ", 1)
        name = f"make_{target[5:]}"
        helpers += [f"def {name}():", f"    return {layer}", "", ""]
        out.append(f"{target} = {name}()")
    return out, helpers


# -- mutated sources -----------------------------------------------------------------------
NUMBERS = ("0", "1", "2", "3", "-1", "7", "16", "64", "4096", "0.5", "1e9", "True", "None")
NAMES = ("x", "self", "nn", "torch", "None", "forward", "view", "size", "super", "zz", "F", "int")
EDITS = ("delete", "duplicate", "swap", "number", "number", "number", "identifier", "identifier")  # most parse


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    skip = (tokenize.ENCODING, tokenize.ENDMARKER)
    return [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type not in skip and t.string]


def _offset(lines: list[str], position: tuple[int, int]) -> int:
    row, column = position
    return sum(map(len, lines[:row - 1])) + column


def token_edit(source: str, kind: str, index: int, choice: int = 0) -> str:
    """One edit of the `index`-th token (modulo their number); `choice` picks the new number or name.

    Numbers and identifiers are edited among the tokens of their kind. Raises tokenize.TokenError
    or SyntaxError when the source no longer tokenizes.
    """
    tokens = _tokens(source)
    wanted = {"number": tokenize.NUMBER, "identifier": tokenize.NAME}.get(kind)
    pool = [t for t in tokens if wanted is None or t.type == wanted] or tokens
    index %= len(pool)
    lines = source.splitlines(keepends=True)
    span = [(_offset(lines, t.start), _offset(lines, t.end)) for t in pool[index:index + 2]]
    (begin, end), token = span[0], pool[index].string
    if kind == "swap" and len(span) == 2:
        (begin2, end2), after = span[1], pool[index + 1].string
        return source[:begin] + after + source[end:begin2] + token + source[end2:]
    names = NAMES + tuple(t.string for t in pool if t.type == tokenize.NAME)
    replacement = {"delete": "", "duplicate": f"{token} {token}", "number": NUMBERS[choice % len(NUMBERS)],
                   "identifier": names[choice % len(names)]}
    return source[:begin] + replacement.get(kind, "") + source[end:]


def _edit(draw, source: str) -> str | None:
    """One drawn token edit; None when the source no longer tokenizes (then the edits stop)."""
    kind, index, choice = draw(st.sampled_from(EDITS)), draw(st.integers(0, 5000)), draw(st.integers(0, 100))
    try:
        return token_edit(source, kind, index, choice)
    except (tokenize.TokenError, SyntaxError):
        return None


FLAGS = (("--format", "json"), ("--format", "text"), ("--format", "concise"), ("--diff",))


@dataclass(frozen=True)
class Mutant:
    seed: str  # the name of the file it was made from
    source: str
    flags: tuple[str, ...]  # the output format it is checked with


@st.composite
def mutants(draw) -> Mutant:
    """One of the seed files with one to three random token edits."""
    path = draw(st.sampled_from(SEEDS))
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    for _ in range(draw(st.integers(1, 3))):
        edited = _edit(draw, source)
        if edited is None:
            break
        source = edited
    return Mutant(os.path.basename(path), source, draw(st.sampled_from(FLAGS)))


# -- through the command line --------------------------------------------------------------
@dataclass
class Outcome:
    """What the command line did with one file."""

    code: int | None  # exit code; None when an exception escaped `main`
    stdout: str
    stderr: str
    seconds: float
    raised: str = ""  # the exception that escaped `main`
    document: dict | None = field(default=None, repr=False)  # the JSON document, with --format json

    def internal_error(self) -> str:
        """The first line of an internal-error message, without the file's path; '' if none."""
        for line in self.stderr.splitlines():
            if "internal error" in line:
                return line.split(".py: ", 1)[-1]
        return ""

    def codes(self, severity: str | None = None) -> list[str]:
        diagnostics = (self.document or {}).get("diagnostics", [])
        return [d["code"] for d in diagnostics if severity is None or d["severity"] == severity]

    def past_deadline(self, timeout: float) -> bool:
        """Longer than every phase (loading, each model, each fix proof) at its deadline allows."""
        models = len((self.document or {}).get("models", ())) or 1
        return self.seconds > timeout * (2 + 2 * models) + 30

    def problems(self, timeout: float = TIMEOUT) -> list[str]:
        found = []
        if self.raised or "Traceback (most recent call last)" in self.stderr + self.stdout:
            found.append(f"traceback: {self.raised or self.stderr[-2000:]}")
        if self.code not in (0, 1, 2):
            found.append(f"exit code {self.code}")
        if self.internal_error():
            found.append(f"internal error: {self.internal_error()}")
        if self.past_deadline(timeout):
            found.append(f"took {self.seconds:.1f} s, past the deadline")
        return found


def run_cli(path: str, worker, *flags: str, timeout: float = TIMEOUT) -> Outcome:
    """`shapecheck PATH FLAGS --timeout T` in this process, through the shared worker."""
    from shapecheck.frontends.cli import main

    out, err, raised, code = io.StringIO(), io.StringIO(), "", None
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([path, *flags, "--timeout", f"{timeout:g}", "--no-color"], worker=worker)
        except BaseException as exc:  # noqa: B036 - anything escaping main is a finding
            raised = f"{type(exc).__name__}: {exc}"
    outcome = Outcome(code, out.getvalue(), err.getvalue(), time.monotonic() - start, raised)
    if "--format" in flags and flags[flags.index("--format") + 1] == "json" and code in (0, 1):
        outcome.document = json.loads(outcome.stdout)
    return outcome


def write(folder: str, name: str, source: str) -> str:
    """The file in a folder of its own (the worker may read its folder's other files)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(source)
    return path


def check_generated(model: Generated, worker, folder: str, timeout: float = TIMEOUT) -> tuple[Outcome, str]:
    """The CLI's outcome on a generated file, and its disagreement with real torch ('' if none)."""
    outcome = run_cli(write(folder, "model.py", model.source), worker, "--format", "json", timeout=timeout)
    if outcome.document is None:
        return outcome, ""
    fixed = safe_fixed(model.source, outcome.document) if _all_fixed(outcome.document) else None
    if fixed is not None:
        real = run_real(Generated(fixed, model.inputs))
        if real.failed:
            return outcome, f"safe fix does not run: {real.failed}"
    return outcome, disagreement(outcome, run_real(model))


def _all_fixed(document: dict) -> bool:
    """Every error has a SAFE fix: then `--fix` must leave a file that runs."""
    errors = [d for d in document["diagnostics"] if d["severity"] == "error"]
    return all(d["fix"] and d["fix"]["applicability"] == "safe" for d in errors)


def safe_fixed(source: str, document: dict) -> str | None:
    """The source as `--fix` writes it (every SAFE fix applied); None when there is none."""
    from shapecheck.api import fixed_source
    from shapecheck.diagnostics import Diagnostic, Report

    diagnostics = tuple(Diagnostic.from_dict(d) for d in document["diagnostics"])
    text, count = fixed_source(Report(path="model.py", diagnostics=diagnostics, source=source))
    return text if count else None


def check_mutant(mutant: Mutant, worker, folder: str, timeout: float = TIMEOUT) -> Outcome:
    return run_cli(write(folder, mutant.seed, mutant.source), worker, *mutant.flags, timeout=timeout)


# -- the oracle ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Real:
    """The generated model run by real torch on CPU at its hinted input."""

    failed: str = ""  # the error torch raised, first line; '' when it ran
    batch_changed: bool = False  # a view/reshape turned a batch of N into a first size other than N
    broadcast: bool = False  # torch warned that a loss's target size differs from its input's


class _Reshapes(TorchFunctionMode):
    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch, self.changed = batch, False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name in ("view", "reshape") and isinstance(out, torch.Tensor) and out.dim():
            self.changed |= args[0].dim() > 0 and args[0].shape[0] == self.batch != out.shape[0]
        return out


def run_real(model: Generated) -> Real:
    namespace: dict = {"__name__": "fuzzed_model"}
    exec(compile(model.source, "<fuzzed model>", "exec"), namespace)
    torch.manual_seed(0)
    tensors = [torch.zeros(s, dtype=torch.int64) if d == "int64" else torch.randn(s) for s, d in model.inputs]
    reshapes = _Reshapes(model.inputs[0][0][0])
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        try:
            with reshapes:
                namespace["Net"]()(*tensors)
        except Exception as exc:
            return Real(failed=(str(exc).strip().splitlines() or [type(exc).__name__])[0],
                        batch_changed=reshapes.changed)
    broadcast = any("target size" in str(w.message) for w in caught)
    return Real(batch_changed=reshapes.changed, broadcast=broadcast)


def _must_fail(code: str) -> bool:
    return code[2] in "12345" or code == "SC905"


def disagreement(outcome: Outcome, real: Real) -> str:
    """Where shapecheck's verdict on a generated model contradicts real torch; '' when they agree."""
    errors = set(outcome.codes("error"))
    hard = sorted(c for c in errors if _must_fail(c) and c not in SILENT)
    models = (outcome.document or {}).get("models", [])
    checked = bool(models) and all(m["status"] == "checked" for m in models)
    if hard and not real.failed and "SC202" not in errors:  # after SC202 the batch is kept: findings are
        return f"false alarm: {', '.join(hard)} but torch runs it"  # about the code as it should be
    if not hard and real.failed and checked:
        return f"missed: no error, but torch fails: {real.failed}"
    if "SC202" in errors and not real.failed and not real.batch_changed:
        return "false alarm: SC202 but no reshape changes the batch"
    if "SC402" in errors and not real.failed and not real.broadcast:
        return "false alarm: SC402 but torch does not broadcast the loss"
    return ""
