"""Turn trace events into diagnostics: the code, the message with its numbers, the spans.

A rule never sees torch objects: events carry plain numbers and the source is reached
through a :class:`Locator`, so this room depends only on ``diagnostics``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Protocol

from ..diagnostics import Diagnostic, Related, Span, format_shape, shape_product
from .catalog import BY_NAME, REGISTRY, rule

__all__ = ["REGISTRY", "Locator", "run_rules", "rule"]


class Locator(Protocol):
    """Where things are in the user's source (implemented by the engine's locate module)."""

    def layer(self, name: str): ...  # -> CallSite | None: the constructor call of a submodule
    def origin(self, name: str, param: str): ...  # -> Origin | None: where an argument's value was written
    def op(self, line: int, names: tuple[str, ...]): ...  # -> CallSite | None
    def call(self, line: int, name: str): ...  # -> CallSite | None: `self.name(...)` in forward
    def line_span(self, line: int) -> Span: ...
    def text(self, span: Span) -> str: ...


@dataclass(frozen=True)
class Context:
    model: str
    locator: Locator


PARAM_RULES = {
    "in_features": "linear-in-features",
    "in_channels": "conv-in-channels",
    "num_features": "norm-num-features",
    "num_channels": "norm-num-features",
    "normalized_shape": "norm-num-features",
    "input_size": "rnn-input-size",
    "embed_dim": "attention-embed-dim",
}
UNITS = {"in_features": "input features", "in_channels": "input channels", "num_features": "channels",
         "num_channels": "channels", "normalized_shape": "trailing sizes", "input_size": "input features",
         "embed_dim": "features"}
RESHAPE_NAMES = ("view", "reshape", "flatten")
CAT_NAMES = ("cat", "concat", "concatenate", "stack")


def run_rules(events, ctx: Context) -> list[Diagnostic]:
    out = []
    for event in events:
        build = _BUILDERS.get(event.kind, _generic)
        diagnostic = build(event, ctx)
        if diagnostic is not None:
            out.append(diagnostic)
    return out


# -- helpers -------------------------------------------------------------------------------
def _shape(s) -> str:
    return format_shape(tuple(s))


def _factors(shape) -> str:
    """(16, 6, 6) -> '16×6×6'; one size stays as is."""
    return "×".join(str(d) for d in shape)


def _forward_related(event, ctx: Context, message: str) -> tuple[Related, ...]:
    if event.line is None:
        return ()
    site = ctx.locator.call(event.line, event.name)
    span = site.span if site is not None else ctx.locator.line_span(event.line)
    return (Related(span, message),) if span is not None else ()


def _layer_span(event, ctx: Context, param: str | None = None):
    """The constructor call of the layer (or the one argument to change); else the call in forward."""
    site = ctx.locator.layer(event.name)
    if site is not None:
        arg = _arg(site, param) if param else None
        return (arg.span if arg else site.span), site
    return (ctx.locator.line_span(event.line) if event.line else None), None


# Where a parameter stands when the constructor's signature does not name it (nn.LSTM(*args)).
_POSITIONS = {"input_size": 0, "hidden_size": 1}


def _arg(site, name: str):
    args = getattr(site, "args", ())
    for arg in args:
        if arg.name == name:
            return arg
    position = _POSITIONS.get(name)
    return next((a for a in args if a.name is None and a.position is not None and a.position == position), None)


def _diag(name: str, message: str, span, ctx: Context, event, notes=(), related=(), **facts) -> Diagnostic:
    facts = {**event.facts, **facts, "event": event.kind, "layer": event.name, "op": event.op}
    return Diagnostic(rule=BY_NAME[name], message=message, span=span, model=ctx.model, notes=tuple(notes),
                      related=tuple(related), facts=tuple(facts.items()))


# -- layers --------------------------------------------------------------------------------
def _layer_input(event, ctx: Context) -> Diagnostic:
    f = event.facts
    param = f["param"]
    span, site = _layer_span(event, ctx, param)
    arg = _arg(site, param) if site else None
    written = f" ({param}={arg.text})" if arg is not None and arg.text != str(f["expected"]) else ""
    message = (f"`{event.name}` expects {_expects_text(param, f['expected'])}{written} but receives "
               f"{_received_text(f)}")
    found = ctx.locator.origin(event.name, param)
    origin = _chain(found, f["expected"])
    notes = ([origin.chain(_value(f["expected"]))] if origin else []) + list(event.chain)
    facts = {"arg_text": arg.text if arg else None}
    related = ()
    if origin is not None and origin.span is not None:  # the value to change was written elsewhere
        span, facts = origin.span, {"arg_text": origin.text, "origin": str(origin.links[-1])}
        if arg is not None:  # where the layer's argument is written: the fix there when the other fails
            facts["use"] = (arg.text, arg.span.line, arg.span.column, arg.span.end_line, arg.span.end_column)
        related = (Related(site.span, f"`{event.name}` is built here"),) if site is not None else ()
    elif arg is not None and _name_holding(found, arg, f["actual"]):
        facts["holds_actual"] = _name_holding(found, arg, f["actual"])
    if "flattened_from" in f:
        notes.append(f"line {f['flatten_line']}: {f['flatten_op']} turns {_shape(f['flattened_from'])} into "
                     f"{_shape(f['in_shape'])}")
    notes.append(f"`{event.name}` receives a tensor of shape {_shape(f['in_shape'])}")
    name = PARAM_RULES.get(param, "layer-input-size")
    related += _forward_related(event, ctx, f"`{event.name}` is called here with {_shape(f['in_shape'])}")
    last = _features_last(event, ctx) or _sized_for_sample(event, ctx)
    at = last.get("norm_call_at") or last.get("reshape_at")
    if at:  # what to change is the call in forward
        units = "channels" if "norm_call_at" in last else "input features"
        related = (Related(span, f"`{event.name}` is built here for {f['expected']} {units}"),) if span else ()
        facts = {"arg_text": arg.text if arg else None}  # the call in forward, not where the value was written
        span = Span(span.path if span else ctx.locator.line_span(event.line).path, *at)
    if "reshape_at" in last:
        notes.append(f"`{event.name}` is sized for one row of {_factors(f['flattened_from'][1:])} = {f['expected']} "
                     f"per sample: flatten per sample at line {f['flatten_line']}")
    if "norm_call_at" in last:
        notes.append(f"the {f['expected']} features are the last dimension: BatchNorm1d normalises dim 1 of "
                     f"(N, C, L), so transpose around it rather than normalise each of the {f['actual']} steps")
    return _diag(name, message, span, ctx, event, notes, related, **{**facts, **last})


def _chain(origin, expected):
    """The origin of the layer's value when its chain passes through names (None for a value
    written at the constructor call, or not recorded); its end span only when the literal
    there holds the layer's value."""
    if origin is None or len(origin.links) < 2:
        return None
    if origin.span is not None and _as_tuple(origin.value) != _as_tuple(expected):
        return replace(origin, span=None)
    return origin


def _name_holding(origin, arg, actual) -> str | None:
    """In an argument computed from names (`c_in + 1`), the one name that held the size the layer
    receives when it was built (`c_in`), if exactly one did."""
    if origin is None or len(origin.links) != 1 or " ".join(arg.text.split()) != origin.links[0].text:
        return None
    holding = [name for name, value in origin.names if _as_tuple(value) == _as_tuple(actual) and name != arg.text]
    return holding[0] if len(holding) == 1 else None


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _sized_for_sample(event, ctx: Context) -> dict:
    """A Linear sized for one sample of the tensor a view/reshape cut into rows: the reshape is
    what to change (its call, for a batch-keeping flatten)."""
    f = event.facts
    origin = f.get("flattened_from")
    if f["param"] != "in_features" or not origin or f.get("flatten_op") not in ("view", "reshape") \
            or shape_product(origin[1:]) != f["expected"] or not f.get("flatten_line"):
        return {}
    site = ctx.locator.op(f["flatten_line"], RESHAPE_NAMES)
    return {"reshape_at": _at(site.span), "reshape_text": ctx.locator.text(site.span)} if site else {}


def _features_last(event, ctx: Context) -> dict:
    """BatchNorm1d(F) given (N, T, F): its own call in forward, to transpose the features into dim 1."""
    f = event.facts
    shape = f["in_shape"]
    if event.op != "BatchNorm1d" or len(shape) != 3 or shape[-1] != f["expected"] or not event.line:
        return {}
    site = ctx.locator.call(event.line, event.name)
    own = site is not None and site.func.replace(" ", "").endswith("." + event.name.split(".")[-1])
    if not own or len(site.args) != 1 or site.args[0].position != 0:
        return {}
    return {"norm_call_at": _at(site.span), "norm_func": site.func, "norm_arg": site.args[0].text}


def _missing_flatten(event, ctx: Context) -> Diagnostic:
    f = event.facts
    site = ctx.locator.call(event.line, event.name) if event.line else None
    arg = next((a for a in getattr(site, "args", ()) if a.position == 0), None)
    built, _ = _layer_span(event, ctx, "in_features")
    span = arg.span if arg is not None else built
    flat = _factors(f["map_shape"])
    message = (f"`{event.name}` expects {f['expected']} input features = {flat}, the whole {flat} map of each "
               f"sample, but receives the map unflattened ({_shape(f['in_shape'])}): flatten it per sample first")
    notes = [f"nn.Linear works on the last dimension only: on {_shape(f['in_shape'])} it would need "
             f"in_features={f['actual']} and give one row per sample, channel and row",
             "changing in_features instead would run, but the output would no longer be one row per sample"]
    related = (Related(built, f"`{event.name}` is built here for {flat} = {f['expected']} features"),) \
        if built is not None and built != span else ()
    return _diag("missing-flatten", message, span, ctx, event, notes, related,
                 arg_text=arg.text if arg is not None else None)


def _plural(n, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _expects_text(param: str, value) -> str:
    if param == "in_channels":
        return _plural(value, "input channel")
    if param in ("num_features", "num_channels"):
        return _plural(value, "channel")
    if param == "normalized_shape":
        return f"last dimension{'s' if isinstance(value, tuple) else ''} {_value(value)}"
    if param == "input_size":
        return _plural(value, "input feature") + " per step"
    return _plural(value, "input feature")


def _received_text(f) -> str:
    actual = f["actual"]
    origin = f.get("flattened_from")
    if origin is not None and len(origin) > 2 and shape_product(origin[1:]) == actual:
        return f"{actual} = {_factors(origin[1:])}"
    if f["param"] in ("in_channels", "num_features", "num_channels"):
        return f"{_plural(actual, 'channel')} (input {_shape(f['in_shape'])})"
    return f"{_value(actual)} (input {_shape(f['in_shape'])})"


def _value(v) -> str:
    return _factors(v) if isinstance(v, tuple) else str(v)


def _kernel_too_large(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, site = _layer_span(event, ctx, "kernel_size")
    spatial_in = f["in_shape"][-len(f["min_sizes"]):]
    message = (f"`{event.name}`'s window does not fit: its input is only {_factors(spatial_in)} here "
               f"(input {_shape(f['in_shape'])}), and it needs at least {_factors(f['min_sizes'])}")
    notes = list(event.chain)
    related = _forward_related(event, ctx, f"`{event.name}` is called here with {_shape(f['in_shape'])}")
    return _diag("kernel-too-large", message, span, ctx, event, notes, related, **_keyword_facts(site, ctx, "padding"))


def _sequence_batch(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, site = _layer_span(event, ctx, "batch_first")
    block = _stacked_block(event, ctx, site)
    if block is not None:  # the flag belongs to the block the encoder copies
        site, span = block, (_arg(block, "batch_first") or block).span
    batch, steps = f["batch"], f["steps"]
    message = (f"`{event.name}` ({event.op}) reads dim 0 as the sequence (batch_first is not set), but it receives "
               f"{_shape(f['in_shape'])} with the batch of {batch} in dim 0: it runs over the {batch} samples as "
               f"time steps and treats the {steps} steps as the batch, so samples are mixed")
    notes = [f"without batch_first=True, {event.op} reads (seq, batch, features): here seq = {batch} (the batch) "
             f"and batch = {steps}", "torch raises nothing: the shapes fit either way"]
    related = _forward_related(event, ctx, f"`{event.name}` is called here with {_shape(f['in_shape'])}")
    if f.get("layout_unknown"):
        message, notes = _axis_unknown(event)
        return _diag("sequence-axis-unknown", message, span, ctx, event, notes, related, **_keyword_facts(site, ctx))
    return _diag("batch-as-sequence", message, span, ctx, event, notes, related, **_keyword_facts(site, ctx))


def _axis_unknown(event) -> tuple[str, list[str]]:
    """SC207: the stated input may be time-major; what the output shows either way."""
    batch, steps = event.facts["batch"], event.facts["steps"]
    message = (f"`{event.name}` ({event.op}) reads dim 0 as the sequence (batch_first is not set): if dim 0 of the "
               f"stated input is the batch of {batch}, it runs over the samples as time steps; if it is the "
               f"sequence ({batch} steps of a batch of {steps}), the input is time-major and right")
    if event.facts["layout_unknown"] == "steps":
        shown = (f"the output has {steps} rows, one per index of dim 1 and none per index of dim 0: right for a "
                 f"time-major input, where dim 1 is the batch; for a batch of {batch} in dim 0 it would need {batch}")
    else:
        shown = f"the output keeps both axes ({batch} and {steps}), so shapecheck cannot tell which is the batch"
    return message, [shown, "if dim 0 is the batch: build the layer with batch_first=True"]


def _stacked_block(event, ctx: Context, site):
    """The constructor call of the block a TransformerEncoder/Decoder stacks copies of: found
    through the model, else the nearest `...Layer(` call written before the stack's own."""
    if event.op not in ("TransformerEncoder", "TransformerDecoder"):
        return None
    found = ctx.locator.layer(event.name + ".layers.0")
    if found is not None or site is None:
        return found
    names = (event.op + "Layer",)
    for line in range(site.span.line, max(site.span.line - 20, 0), -1):
        found = ctx.locator.op(line, names)
        if found is not None:
            return found
    return None


def _transposed_mirror(event, ctx: Context) -> Diagnostic:
    f = event.facts
    keyword = "output_padding" if "output_padding" in f else "padding"
    span, site = _layer_span(event, ctx, keyword)
    into, got, want = _factors(f["in_sizes"]), _factors(f["out_sizes"]), _factors(f["mirror_in"])
    stride = _value(f["stride"]) if len(set(f["stride"])) > 1 else str(f["stride"][0])
    off = tuple(abs(d) for d in f["short"])
    off = off[0] if len(set(off)) == 1 else _value(off)
    how = "short" if keyword == "output_padding" else "too large"
    message = (f"`{event.name}` ({event.op}, stride {stride}) turns {into} back into {got}, but `{f['mirror']}` "
               f"took {want} down to {into}: the decoder comes back {off} {how}; "
               f"{keyword}={_value(f[keyword])} gives {want}")
    why = (f"a stride-{stride} convolution floors, so {want} and smaller sizes both became {into}; output_padding "
           "(less than the stride) says which one to give back") if how == "short" else \
        f"each unit of padding takes 2 off a transposed convolution's output"
    related = _forward_related(event, ctx, f"`{event.name}` is called here with {_shape(f['in_shape'])}")
    return _diag("transposed-conv-mirror", message, span, ctx, event, list(event.chain) + [why], related,
                 **_keyword_facts(site, ctx, keyword))


def _keyword_facts(site, ctx: Context, keyword: str = "batch_first") -> dict:
    """What a fix setting ``keyword=`` in the constructor call needs: the call's text and place,
    and the place of the keyword's value where it is written."""
    if site is None:
        return {}
    arg = _arg(site, keyword)
    return {"call_text": ctx.locator.text(site.span), "call_at": _at(site.span),
            "arg_at": _at(arg.span) if arg is not None else None}


def _at(span: Span) -> tuple[int, int, int, int]:
    return (span.line, span.column, span.end_line, span.end_column)


def _input_dtype(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, _ = _layer_span(event, ctx)
    message = (f"`{event.name}` ({event.op}) needs integer token ids (int64) but receives {f['dtype']} "
               f"values of shape {_shape(f['in_shape'])}")
    return _diag("input-dtype", message, span, ctx, event)


def _layer_error(event, ctx: Context) -> Diagnostic:
    span, _ = _layer_span(event, ctx)
    shapes = ", ".join(_shape(s) for s in event.facts.get("in_shapes", ()))
    message = f"`{event.name}` ({event.op}) fails on input {shapes}: {event.error}"
    related = _forward_related(event, ctx, f"`{event.name}` is called here")
    return _diag("layer-error", message, span, ctx, event, event.chain, related)


# -- ops in forward ------------------------------------------------------------------------
def _op_span(event, ctx: Context, names: tuple[str, ...]):
    """The call on the event's line (its span and text); else the whole line."""
    site = ctx.locator.op(event.line, names) if event.line else None
    if site is not None:
        return site.span, ctx.locator.text(site.span)
    return (ctx.locator.line_span(event.line) if event.line else None), None


def _reshape_call(event, ctx: Context):
    """The reshape call on the event's line: its span, its text, and how a message names it."""
    span, text = _op_span(event, ctx, RESHAPE_NAMES)
    return span, text, (f"`{text}`" if text else event.op)


def _line_text(event, ctx: Context) -> str:
    span = ctx.locator.line_span(event.line) if event.line else None
    text = ctx.locator.text(span) if span is not None else ""
    return text.removeprefix("return ").strip()


def _reshape(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, text = _op_span(event, ctx, RESHAPE_NAMES)
    shape = f["in_shapes"][0]
    total = shape_product(shape)
    target = tuple(f.get("args", ()))
    call = f"`{text}`" if text else f"{event.op}{target}"
    message = f"{call} cannot reshape {_shape(shape)} ({total} elements) into {_target_text(target)}"
    reason = _reshape_reason(total, target)
    if reason:
        message += f": {reason}"
    notes = list(event.chain)
    if len(shape) > 1:
        notes.append(f"each sample has {_factors(shape[1:])} = {shape_product(shape[1:])} values")
    return _diag("reshape-size", message, span, ctx, event, notes, per_sample=shape_product(shape[1:]),
                 call_text=text)


def _view_strides(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, text, call = _reshape_call(event, ctx)
    shape = f["in_shapes"][0]
    target = tuple(f.get("args", ()))
    message = (f"{call} cannot view {_shape(shape)} as {_target_text(target)}: the sizes fit, but the tensor's "
               "memory is not laid out in that order (it comes from a permute, transpose or expand), and view "
               "never copies; use reshape")
    notes = list(event.chain) + ["a batch of 1 hides this: a dimension of size 1 has no stride to check"]
    return _diag("view-strides", message, span, ctx, event, notes, call_text=text)


def _target_text(target) -> str:
    return "(" + ", ".join(str(t) for t in target) + ")"


def _reshape_reason(total, target) -> str:
    known = [t for t in target if isinstance(t, int) and t != -1]
    rest = shape_product(known)
    if total is None or rest is None or rest == 0:
        return ""
    if -1 in target:
        product = "×".join(map(str, known)) + (f" = {rest}" if len(known) > 1 else "")
        return f"{total} is not a multiple of {product}"
    return f"the new sizes hold {rest} elements"


def _batch_changed(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, text, call = _reshape_call(event, ctx)
    per = f["per_sample_shape"]
    message = (f"{call} turns the batch of {f['batch']} into {f['new_first']} rows: each sample has "
               f"{_factors(per)} = {f['per_sample']} values, so rows now mix samples")
    notes = list(event.chain) + [
        f"input {_shape(f['in_shape'])} becomes {_shape(f['out_shape'])}: torch raises nothing because "
        f"{shape_product(f['in_shape'])} elements also divide into that shape",
        "keep the batch: x.view(x.size(0), -1) or torch.flatten(x, 1)"]
    return _diag("batch-mixed", message, span, ctx, event, notes, call_text=text)


def _rows_cut(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, text, call = _reshape_call(event, ctx)
    k = f["new_first"] // f["batch"]
    sizes = f["in_shape"]
    blocks = [_factors(sizes[len(sizes) - i - 1:]) + (f" = {u}" if i else "") for i, u in enumerate(f["units"])]
    message = (f"{call} cuts {_shape(sizes)} into {k}·N = {f['new_first']} rows of {f['row']} values: "
               f"{f['row']} is not the size of a whole block of one sample ({', '.join(blocks)}), so each row "
               f"mixes dimensions")
    notes = list(event.chain) + [
        f"input {_shape(f['in_shape'])} becomes {_shape(f['out_shape'])}: torch raises nothing because the rows "
        f"still divide the batch", "one row per sample: torch.flatten(x, 1); one row per position: "
        "x.permute(0, 2, 3, 1).reshape(-1, C)"]
    return _diag("rows-cut-across", message, span, ctx, event, notes, call_text=text)


def _output_batch(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, text, call = _reshape_call(event, ctx)
    sizes, cut = f["in_shape"], len(f["in_shape"]) - f["units"].index(f["row"]) - 1
    lead = f"dim 1 ({sizes[1]})" if cut == 2 else f"dims 1 to {cut - 1} ({_factors(sizes[1:cut])})"
    message = (f"the output has {f['rows'] // f['batch']}·N = {f['rows']} rows for an input batch of "
               f"N = {f['batch']}: {call} turns {_shape(sizes)} into {f['new_first']} rows of "
               f"{_factors(sizes[cut:])} = {f['row']} values, {f['new_first'] // f['batch']} per sample, one for "
               f"each index of {lead}")
    notes = [f"input {_shape(sizes)} becomes {_shape(f['out_shape'])}, and the output is "
             f"{_shape(f['output_shape'])}: torch raises nothing, but a loss against {f['batch']} targets "
             f"fails or compares the wrong rows",
             "one row per sample: x.view(x.size(0), -1) or torch.flatten(x, 1)"]
    return _diag("output-batch", message, span, ctx, event, notes, call_text=text)


def _batch_hardcoded(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, text, call = _reshape_call(event, ctx)
    message = (f"{call} hard-codes the batch size {f['new_first']}: it works only for batches of exactly "
               f"{f['batch']} samples")
    notes = ["the last batch of an epoch is usually smaller; use x.size(0) instead"]
    return _diag("batch-hardcoded", message, span, ctx, event, notes, call_text=text)


def _cat(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span, text = _op_span(event, ctx, CAT_NAMES)
    shapes = f["in_shapes"]
    diffs = _differing_dims(shapes)
    call = f"`{text}`" if text else f"torch.{event.op}"
    message = f"{call} joins tensors of shapes {' and '.join(_shape(s) for s in shapes)}"
    if diffs:
        message += f", which differ in dim {diffs[0][0]} ({' vs '.join(map(str, diffs[0][1]))})"
    notes = [step for step in event.chain if "drop" in step] or list(event.chain)
    if f.get("working_sizes"):
        sizes = " or ".join(f"{n}×{n}" for n in f["working_sizes"])
        notes.append(f"input sizes {f['size_asks']} line up: {f['size_rule']}; {sizes} checked and works")
    notes.append(f"torch: {event.error}")
    site = ctx.locator.op(event.line, CAT_NAMES) if event.line else None
    joined = next((a for a in getattr(site, "args", ()) if a.position == 0), None)
    return _diag("cat-mismatch", message, span, ctx, event, notes, call_text=text,
                 joined_text=joined.text if joined else None, joined_at=_at(joined.span) if joined else None)


def _differing_dims(shapes) -> list[tuple[int, tuple]]:
    if len({len(s) for s in shapes}) != 1:
        return []
    return [(d, tuple(s[d] for s in shapes)) for d in range(len(shapes[0])) if len({s[d] for s in shapes}) > 1]


def _loss(event, ctx: Context) -> Diagnostic:
    f = event.facts
    if event.op[:1].isupper():  # a loss module: report where input and target meet, in forward
        span = ctx.locator.line_span(event.line) if event.line else None
    else:
        span, _ = _op_span(event, ctx, (event.op,))
    inp, tgt = _shape(f["input_shape"]), _shape(f["target_shape"])
    if event.kind == "loss_broadcast":
        message = (f"`{event.name}` compares input {inp} with target {tgt}: they broadcast to "
                   f"{_shape(f['broadcast_shape'])}, so predictions are compared with the wrong targets")
        notes = ["torch only warns ('Using a target size ... that is different to the input size') or nothing "
                 "at all, and returns a wrong loss (with reduction='none', a loss per pair of samples)",
                 "make the shapes equal: squeeze the input or unsqueeze the target"]
        target = _loss_target(event, ctx)
        span = target.span if target is not None else span
        return _diag("loss-broadcast", message, span, ctx, event, notes,
                     target_text=target.text if target is not None else None)
    want = f.get("expected_target")
    message = f"`{event.name}` gets input {inp} and target {tgt}"
    message += f": the target should be {_shape(want)}" if want is not None else ": the shapes must be equal"
    return _diag("loss-shape", message, span, ctx, event)


def _loss_target(event, ctx: Context):
    """The target argument of the loss call on the event's line (module or function)."""
    if not event.line:
        return None
    module = event.op[:1].isupper()
    site = ctx.locator.call(event.line, event.name) if module else ctx.locator.op(event.line, (event.op,))
    return next((a for a in getattr(site, "args", ()) if a.name == "target" or a.position == 1), None)


def _op_error(event, ctx: Context) -> Diagnostic:
    span, text = _op_span(event, ctx, (event.op,))
    shapes = " and ".join(_shape(s) for s in event.facts.get("in_shapes", ()))
    text = text or _line_text(event, ctx)
    call = f"`{text}`" if text else f"`{event.op}`"
    message = f"{call} fails on {shapes}: {event.error}"
    return _diag("op-error", message, span, ctx, event, event.chain)


# -- what the check could not supply -------------------------------------------------------
def _missing_input(event, ctx: Context) -> Diagnostic:
    names = " and ".join(f"`{n}`" for n in event.facts["names"])
    span = ctx.locator.line_span(event.line) if event.line else None
    message = f"`{ctx.model}` was not checked: its forward needs an input for {names}, and none is known"
    notes = [f"add `{event.facts['hint']}` on the line before the class, with the real sizes in place of `...`",
             "or pass --input once per forward argument, in order"]
    return _diag("needs-input-shape", message, span, ctx, event, notes)


def _missing_value(event, ctx: Context) -> Diagnostic:
    f = event.facts
    span = ctx.locator.line_span(event.line) if event.line else None
    what = "the constructor argument" if f["constructor"] else "an input for"
    message = (f"`{ctx.model}` needs {what} `{f['param']}`: its default None is used at line {event.line} "
               f"(`{f['used']}`), so the check stopped there")
    if f["constructor"]:
        notes = [f"real callers pass `{f['param']}`; build the model in the file with it "
                 f"(`model = {ctx.model}({f['param']}=...)`) to check the rest"]
        return _diag("needs-constructor-args", message, span, ctx, event, notes)
    notes = [f"give `{f['param']}` a shape with a `# shapecheck: input=(...)` hint (one shape per forward "
             "argument) or --input once per argument"]
    return _diag("needs-input-shape", message, span, ctx, event, notes)


def _generic(event, ctx: Context) -> Diagnostic:
    span = ctx.locator.line_span(event.line) if event.line else None
    if event.kind == "unsupported":
        where = f"line {event.line}" if event.line else "the forward pass"
        message = f"the check stopped at {where}: {event.error}"
        notes = ["fake tensors carry shapes, not values: the layers before this line were checked, the rest "
                 "was not", "to check past it, give that code a shape-only path, or mark the line with "
                 "`# shapecheck: ignore[SC906]` to silence this note"]
        return _diag("unsupported", message, span, ctx, event, notes)
    return _diag("forward-error", f"the forward pass fails: {event.error}", span, ctx, event, event.chain)


_BUILDERS: dict[str, Callable] = {
    "layer_input": _layer_input,
    "missing_flatten": _missing_flatten,
    "kernel_too_large": _kernel_too_large,
    "input_dtype": _input_dtype,
    "sequence_batch": _sequence_batch,
    "transposed_mirror": _transposed_mirror,
    "layer_error": _layer_error,
    "reshape": _reshape,
    "view_strides": _view_strides,
    "batch_changed": _batch_changed,
    "batch_hardcoded": _batch_hardcoded,
    "rows_cut": _rows_cut,
    "output_batch": _output_batch,
    "cat": _cat,
    "loss_shape": _loss,
    "loss_broadcast": _loss,
    "op_error": _op_error,
    "missing_input": _missing_input,
    "missing_value": _missing_value,
}
