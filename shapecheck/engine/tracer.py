"""Run a model's forward pass without data and record every layer, every shape-changing op and
every op that combines two or more tensors of the data flow (a residual ``x + y``: a "merge").

The trace is eager (Python control flow just runs) on shape-only tensors: plain meta
tensors, torch's fake tensors, or fake tensors with a ShapeEnv whose batch dimension is a
symbol (see ``symbolic.FakeSession``; ``session.trace_target`` picks). Two interception points:

* every leaf layer (a module class from ``torch.nn``) has its ``forward`` wrapped on the
  instance: the declared input size is checked *before* the call, and a layer that does not
  fit is recorded and then called with an input it does fit, so the trace goes on;
* a :class:`TorchFunctionMode` sees every torch call made directly from the user's file
  (``x.view``, ``torch.cat``, ``F.max_pool2d``...): it records shape-changing ones, checks
  reshapes for a batch that changed, and turns a failing call into an event, substituting
  the output the call was meant to produce where that is clear.

The result is plain data: :class:`~shapecheck.diagnostics.ShapeRecord` rows and
:class:`TraceEvent` findings-to-be, which the rules turn into diagnostics.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..diagnostics import ShapeRecord, shape_product
from . import checks, deadline
from .discover import InputSpec, hint_text
from .loader import first_line, user_line
from .shortcuts import shortcut
from .symbolic import (FakeSession, batch_multiple, is_symbolic, made_for_real, onto_trace_device, own_reads, shape_of, size_expr,
                       size_value)
from .usercode import call_user, reraise_if_ours, unset_global, unsupplied_from_exception, unsupplied_in_frame

_TORCH_DIR = os.path.dirname(torch.__file__)
_THIS_DIR = os.path.dirname(os.path.dirname(__file__))

# Files whose frames sit between a user's call and __torch_function__ (Python wrappers of
# torch functions); skipped when deciding who called.
_WRAPPER_FILES = frozenset(
    os.path.join(_TORCH_DIR, *p)
    for p in [("overrides.py",), ("_jit_internal.py",), ("nn", "functional.py"), ("functional.py",),
              ("_tensor.py",), ("_compile.py",)]
)

CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)

# Calls recorded even when they keep the shape (the table should show them).
RECORDED_OPS = frozenset({
    "view", "reshape", "flatten", "unflatten", "cat", "concat", "concatenate", "stack", "matmul", "mm",
    "bmm", "einsum", "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "interpolate", "permute", "transpose",
    "squeeze", "unsqueeze", "expand", "repeat", "split", "chunk", "mean", "sum", "amax", "max",
})
RESHAPE_OPS = frozenset({"view", "reshape", "flatten"})
# Calls that move tensors between devices or dtypes: on fake meta tensors they are no-ops.
DEVICE_MOVES = frozenset({"to", "cuda", "cpu", "pin_memory"})


@dataclass(frozen=True)
class TraceEvent:
    """Something that does not fit, with the numbers; the rules turn it into a diagnostic."""

    kind: str  # see checks.EVENT_KINDS
    name: str  # layer qualname, or the op name for calls in forward
    op: str  # layer type ("Linear") or op ("view")
    line: int | None  # the line in the user's file where it is called
    facts: dict = field(default_factory=dict)
    chain: tuple[str, ...] = ()  # how the offending size came about
    error: str = ""  # torch's own message, when torch raised
    record: int = -1  # index of the matching ShapeRecord


@dataclass
class TraceResult:
    records: list[ShapeRecord] = field(default_factory=list)
    events: list[TraceEvent] = field(default_factory=list)
    output_shapes: tuple = ()
    stopped: bool = False  # the trace could not go on; records are partial
    stop_reason: str = ""
    out_of_time: float = 0.0  # the budget (s) that stopped it, when the deadline did
    # first sizes (in, out) of each reshape from the user's file that might move the batch
    reshapes: list[tuple] = field(default_factory=list)
    stages: list[tuple] = field(default_factory=list)  # (op, params) of each layer that resized H, W
    # layers that may have been given the batch where they read another axis: the symbolic trace decides
    suspects: list[str] = field(default_factory=list)


class TraceStopped(Exception):
    """Raised through the model once nothing more can be learned."""


class Tracer:
    """One trace of one model on fake inputs. Not reusable: make one per trace."""

    def __init__(self, path: str, mode: str = "symbolic", device: str = "meta", explain: bool = True):
        self.path = path
        self.device = device
        self.explain = explain  # each record's formula (note, steps) and the stages that resized H, W
        # plain meta tensors need a meta model; a model with real weights is traced on fakes
        self.session = FakeSession.create("fake" if mode == "meta" and device != "meta" else mode)
        self.result = TraceResult()
        self.names: dict[int, str] = {}
        self.origins: dict[int, tuple[Any, dict]] = {}  # id(tensor) -> (tensor, how it was made)
        self.batch_expr: str | None = None
        self.batch_symbol = None
        self.spatial_steps: list[str] = []  # the notes of records that changed spatial sizes
        self.producers: dict[int, tuple[Any, tuple[int, ...]]] = {}  # id(tensor) -> (tensor, record indices)
        self.input_batch: int | None = None  # the example batch size (dim 0 of the first input)
        self.batch_exprs: set[str] = set()  # the batch symbols of every input
        self.inside_sequence: set[int] = set()  # layers run by a sequence layer (its attention, its blocks)
        self.strided: list[tuple[str, dict]] = []  # (name, sizes) of each strided conv, in order
        self.batch_first_elsewhere = False  # some layer of the model is built with batch_first=True
        self.row_reshapes: dict[int, dict] = {}  # record index -> facts of a reshape to k·N rows of planes

    # -- entry point ---------------------------------------------------------------------
    def run(self, model: torch.nn.Module, inputs: list[tuple[tuple[int, ...], str]],
            named: tuple[str, ...] = ()) -> TraceResult:
        """Trace ``model`` on fakes of ``inputs``; the last ``len(named)`` are passed by those names."""
        fakes = [self.session.make_input(shape, dtype, self.device) for shape, dtype in inputs]
        self._produce(fakes, (-1,))
        if fakes and fakes[0].dim():
            self.input_batch = size_value(fakes[0].shape[0])
        if fakes and fakes[0].dim() and is_symbolic(fakes[0].shape[0]):
            self.batch_expr = size_expr(fakes[0].shape[0])
            self.batch_symbol = fakes[0].shape[0].node.expr
            # the other inputs' batches (a target sequence): a symbol each, with the same example size
            self.batch_exprs = {size_expr(t.shape[0]) for t in fakes
                                if t.dim() and is_symbolic(t.shape[0]) and size_value(t.shape[0]) == self.input_batch}
        self.names = {id(m): name for name, m in model.named_modules()}
        given = len(fakes) - len(named)
        keywords = dict(zip(named, fakes[given:]))
        missing = missing_inputs(model, given, keywords)
        if missing:
            self._missing_inputs(model, inputs, missing)
            return self.result
        wrapped = self._wrap_leaves(model)
        try:
            with torch.device(self.device), self.session.mode, _Recorder(self), _shape_only_mask_test(), _seeded():
                out = call_user(model, *fakes[:given], **keywords)
            self.result.output_shapes = tuple(shape_of(t) for t in _tensors(out))
            self._output_batch(_tensors(out))
        except TraceStopped as stop:
            self._stop(str(stop))
        except deadline.OutOfTime as late:
            self._out_of_time(late)
        except Exception as exc:  # an error no layer or op handler could place
            reraise_if_ours(exc)
            self._unplaced_error(exc)
        finally:
            for module in wrapped:
                del module.forward
        return self.result

    def _missing_inputs(self, model, inputs, missing: list[str]) -> None:
        """forward takes arguments nobody gave a shape for: say which, with the hint to paste."""
        code = getattr(type(model).forward, "__code__", None)
        line = code.co_firstlineno if code is not None and code.co_filename == self.path else None
        batch = inputs[0][0][:1] if inputs and inputs[0][0] else (8,)
        given = [InputSpec(tuple(shape), dtype) for shape, dtype in inputs]
        unknown = [InputSpec(batch + ("...",)) for _ in missing]  # sizes for the user to fill in
        facts = {"names": tuple(missing), "hint": hint_text(tuple(given + unknown))}
        self._event("missing_input", type(model).__name__, "forward", line, facts)
        self._stop(f"forward needs an input for {', '.join(missing)}")

    # -- layers --------------------------------------------------------------------------
    def _wrap_leaves(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        wrapped = []
        self.batch_first_elsewhere = any(getattr(m, "batch_first", False) is True for m in model.modules())
        for module in model.modules():
            if isinstance(module, checks.SEQUENCE_LAYERS):
                self.inside_sequence.update(id(m) for m in module.modules() if m is not module)
            if is_leaf(module) and "forward" not in vars(module):
                module.forward = self._layer_call(module, module.forward)
                wrapped.append(module)
        return wrapped

    def _layer_call(self, module, forward):
        def call(*args, **kwargs):
            return self._run_layer(module, forward, args, kwargs)
        return call

    def _run_layer(self, module, forward, args, kwargs):
        deadline.check()
        with own_reads():
            name = self.names.get(id(module), type(module).__name__)
            line = self.frame_line(sys._getframe(2))
            tensors_in = _tensors((args, kwargs))
            in_shapes = tuple(shape_of(t) for t in tensors_in)
            if id(module) not in self.inside_sequence:  # before the call: running it may fix the batch's size
                self._sequence_batch(module, name, line, args)
            problem = checks.check_layer(module, args, kwargs, self.origin_of)
            if problem is not None:
                chain = problem.chain
                if problem.kind == "kernel_too_large":  # how the image got this small, then the formula
                    chain = tuple(self.spatial_steps) + chain
                self._event(problem.kind, name, type(module).__name__, line, problem.facts, chain)
                args, kwargs = problem.args, problem.kwargs
        try:
            out = call_user(forward, *args, **kwargs) if problem is None or problem.output is None else problem.output
        except TraceStopped:
            raise
        except Exception as exc:
            reraise_if_ours(exc)
            if problem is not None:  # the corrected call failed too: nothing more to learn here
                raise TraceStopped(f"{name} failed after correction: {exc}") from exc
            if checks.is_unsupported(exc):  # the layer reads tensor values (e.g. a mask's `.item()`)
                reason = checks.unsupported_reason(name, exc)
                self._event("unsupported", name, type(module).__name__, line, {"in_shapes": in_shapes}, error=reason)
                raise TraceStopped(f"line {line}: {reason}") from exc
            self._event("layer_error", name, type(module).__name__, line,
                        {"in_shapes": in_shapes}, error=first_line(exc))
            raise TraceStopped(f"{name}: {first_line(exc)}") from exc
        with own_reads():
            self._record("module", name, type(module).__name__, line, in_shapes, out, module=module, inputs=tensors_in)
            self._carry_origin(args, out)
            self._mirror(module, name, line, args, kwargs, out)
        return out

    def _mirror(self, module, name, line, args, kwargs, out) -> None:
        """A strided transposed conv that does not give back what its mirror took in."""
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if x is None or not isinstance(out, torch.Tensor):
            return
        off = checks.off_mirror(module, x, out, self.strided, args, kwargs)
        if off is not None:
            steps = self.result.records[-1].steps if self.result.records else ()
            self._event("transposed_mirror", name, type(module).__name__, line, off, steps)
        stage = checks.strided_stage(module, x, out)
        if stage is not None:
            self.strided.append((name, stage))

    def _sequence_batch(self, module, name, line, args) -> None:
        """A batch_first=False layer given (N, T, F): it runs along the batch and mixes samples.

        The static trace only suspects it (dim 0 has the batch's size); the symbolic trace,
        where the batch is a symbol, decides.
        """
        x = checks.reads_time_first(module, args)
        if x is None:
            return
        first, second = x.shape[0], x.shape[1]
        if self.batch_symbol is None:
            if self.input_batch is not None and size_value(first) == self.input_batch != size_value(second):
                self.result.suspects.append(name)
            return
        if is_symbolic(first) and size_expr(first) in self.batch_exprs and not is_symbolic(second):
            facts = {"in_shape": shape_of(x), "batch": size_value(first), "steps": size_value(second),
                     "layer_kind": type(module).__name__, "batch_first_elsewhere": self.batch_first_elsewhere}
            self._event("sequence_batch", name, type(module).__name__, line, facts)

    # -- ops called from the user's file -------------------------------------------------
    def run_op(self, func, args, kwargs, line: int):
        op = op_name(func)
        tensors_in = _tensors((args, kwargs))
        if op in DEVICE_MOVES and args and isinstance(args[0], torch.Tensor):
            return self._pass_through(tensors_in, checks.device_move(func, args, kwargs))
        in_shapes = tuple(shape_of(t) for t in tensors_in)
        first_in = tensors_in[0].shape[0] if tensors_in and tensors_in[0].dim() else None
        batch_in = first_in if first_in is not None and self._is_batch(first_in) else None
        rows_in = batch_in is None and first_in is not None and self._rows_of_batch(first_in)  # before the call
        loss_problem = checks.check_loss_call(op, args, kwargs)
        if loss_problem is not None:
            self._event(loss_problem.kind, op, op, line, loss_problem.facts, loss_problem.chain)
            args, kwargs = loss_problem.args, loss_problem.kwargs
        try:
            out = shortcut(func, args, kwargs)
            out = call_user(func, *args, **kwargs) if out is None else out
        except Exception as exc:
            reraise_if_ours(exc)
            return self._op_failed(func, op, args, kwargs, line, in_shapes, exc)
        out_tensors = _tensors(out)
        if not out_tensors:
            return out
        if op in RESHAPE_OPS and batch_in is not None:
            out = self._check_batch(op, args, line, tensors_in[0], in_shapes[0], out)
            out_tensors = _tensors(out)
            self._rows_of_planes(op, args, tensors_in[0], out_tensors[0])
        elif op in RESHAPE_OPS and tensors_in and not checks.keeps_first_dim(op, args, kwargs):
            self.result.reshapes.append((in_shapes[0][:1], shape_of(out_tensors[0])[:1]))
            if in_shapes[0][:1] == (self.input_batch,) and self.batch_symbol is None:
                self._rows_of_planes(op, args, tensors_in[0], out_tensors[0])
            self._suspect_rows(op, in_shapes[0], out_tensors[0])
            if rows_in:
                self._hardcoded_rows(op, args, line, tensors_in[0], out_tensors[0])
        changed = bool(in_shapes) and shape_of(out_tensors[0]) != in_shapes[0]
        if op in RECORDED_OPS or changed:
            self._record("op", op, op, line, in_shapes, out, func=func, args=args, kwargs=kwargs, inputs=tensors_in)
        elif self._merges(tensors_in):
            self._record("merge", op, op, line, in_shapes, out, func=func, args=args, kwargs=kwargs, inputs=tensors_in)
        else:
            self._pass_through(tensors_in, out)
        self._carry_origin(args, out, made_by=(op, line) if op in RESHAPE_OPS else None)
        return out

    def _rows_of_batch(self, size) -> bool:
        """k·N for an integer k > 1: rows of several per sample (tokens, pixels)."""
        return self.batch_symbol is not None and is_symbolic(size) and batch_multiple(size, self.batch_symbol)

    def _is_batch(self, size) -> bool:
        return self.batch_expr is not None and is_symbolic(size) and size_expr(size) == self.batch_expr

    def _check_batch(self, op, args, line, x, in_shape, out):
        """A reshape whose rows no longer hold whole samples (runs, silently wrong).

        Merging the batch with other dimensions (N×T rows of one sample each) is fine: the
        first size must stay an integer multiple of the batch symbol.
        """
        first = out.shape[0] if out.dim() else None
        if first is not None and is_symbolic(first) and batch_multiple(first, self.batch_symbol):
            return checks.keep_batch(x) if self._rows_cut(op, args, line, x, in_shape, out) else out
        facts = {"batch": in_shape[0], "new_first": shape_of(out)[0] if out.dim() else None,
                 "in_shape": in_shape, "out_shape": shape_of(out), "per_sample": shape_product(in_shape[1:]),
                 "per_sample_shape": in_shape[1:], "args": _describe_args(args[1:])}
        chain = self.origin_chain(x)
        if first is not None and not is_symbolic(first):
            self._event("batch_hardcoded", op, op, line, facts, chain)
            return out
        self._event("batch_changed", op, op, line, facts, chain)
        return checks.keep_batch(x)

    def _rows_cut(self, op, args, line, x, in_shape, out) -> bool:
        """k·N rows (k > 1) whose length is no whole block of a sample: each row mixes dimensions.
        The trace goes on with one row per sample, as for a batch that changed."""
        row = shape_product(shape_of(out)[1:])
        if row is None or size_value(out.shape[0]) == in_shape[0] or checks.rows_are_units(in_shape, row):
            return False
        facts = {"batch": in_shape[0], "new_first": shape_of(out)[0], "in_shape": in_shape,
                 "out_shape": shape_of(out), "row": row, "units": checks.trailing_units(in_shape),
                 "args": _describe_args(args[1:])}
        self._event("rows_cut", op, op, line, facts, self.origin_chain(x))
        return True

    def _rows_of_planes(self, op, args, x, out) -> None:
        """A `view(-1, k)` of the batch into k·N rows (k > 1) that each hold a whole block of one
        sample larger than one position's features (a channel's H×W plane): noted, for the output
        check. Rows of one position (a pixel's channels, a token's features) are per-position
        heads; sizes the code works out itself (`view(b * heads, t, d)`) are meant as written."""
        in_shape, out_shape, sizes = shape_of(x), shape_of(out), _describe_args(args[1:])
        row, units = shape_product(out_shape[1:]), checks.trailing_units(in_shape)
        if sizes[:1] != (-1,) or row is None or not out_shape or len(units) != len(in_shape) - 1:
            return
        first, batch = size_value(out.shape[0]), size_value(x.shape[0])
        if isinstance(first, int) and isinstance(batch, int) and first > batch and first % batch == 0 \
                and row in units[1:-1]:
            self.row_reshapes[len(self.result.records)] = {
                "op": op, "batch": batch, "new_first": first, "in_shape": in_shape, "out_shape": out_shape,
                "row": row, "units": units, "args": sizes}

    def _output_batch(self, outputs) -> None:
        """The first output's rows were made from the batch by a `view(-1, k)` into planes (4·N
        rows for a batch of N): the event goes at that view. Not when a layer on the way already
        has a finding (a Linear sized for one row per sample names the same view)."""
        path = self._rows_path(outputs[0]) if outputs else []
        if not path or path[-1] not in self.row_reshapes or any(e.record in path for e in self.result.events):
            return
        index, t = path[-1], outputs[0]
        record = self.result.records[index]
        facts = dict(self.row_reshapes[index], output_shape=shape_of(t), rows=size_value(t.shape[0]))
        self.result.events.append(TraceEvent("output_batch", record.op, record.op, record.line, facts, record=index))

    def _rows_path(self, t) -> list[int]:
        """The records that made ``t``, back through those that keep the first size, to the one
        that made it (a noted reshape, or any other change of rows)."""
        entry = self.producers.get(id(t))
        index = entry[1][0] if entry is not None and entry[0] is t and entry[1] else -1
        path = []
        while index >= 0 and index not in path:
            path.append(index)
            record = self.result.records[index]
            if index in self.row_reshapes or not record.in_shapes or not record.in_shapes[0] \
                    or not record.out_shapes or not record.out_shapes[0] \
                    or record.in_shapes[0][0] != record.out_shapes[0][0]:
                break
            index = record.sources[0] if record.sources else -1
        return path

    def _hardcoded_rows(self, op, args, line, x, out) -> None:
        """Rows that hold k·N samples' worth (N×T tokens, N×H×W pixels) reshaped back with the
        example batch size as a constant: the batch size is hard-coded. Not when the batch comes
        out whole in a later dimension (`view(2, -1, d)` splitting a pair of batches)."""
        if not out.dim() or is_symbolic(out.shape[0]) or size_value(out.shape[0]) != self.input_batch \
                or any(self._is_batch(d) for d in out.shape[1:]):
            return
        facts = {"batch": self.input_batch, "new_first": shape_of(out)[0], "in_shape": shape_of(x),
                 "out_shape": shape_of(out), "args": _describe_args(args[1:]), "rows_per_sample": True}
        self._event("batch_hardcoded", op, op, line, facts, self.origin_chain(x))

    def _suspect_rows(self, op, in_shape, out) -> None:
        """In a static trace, rows of a reshape that may be k·N of the batch's size and cut across
        dimensions: the symbolic trace decides."""
        out_shape = shape_of(out)
        batch, row = self.input_batch, shape_product(out_shape[1:])
        if not batch or not in_shape or in_shape[0] != batch or not out_shape or row is None:
            return
        if out_shape[0] % batch == 0 and out_shape[0] > batch and not checks.rows_are_units(in_shape, row):
            self.result.suspects.append(op)

    def _op_failed(self, func, op, args, kwargs, line, in_shapes, exc):
        if isinstance(exc, TypeError) and any(a is None for a in tree_flatten((args, kwargs))[0]):
            reason = self._unsupplied(self._none_on_line(line), exc)
            if reason:
                raise TraceStopped(reason) from exc
        facts = {"in_shapes": in_shapes, "args": _describe_args(args[1:] if op in RESHAPE_OPS else ())}
        tensors_in = _tensors(args)
        chain = self.origin_chain(tensors_in[0]) if tensors_in else ()
        if checks.is_unsupported(exc):
            self._event("unsupported", op, op, line, facts, error=checks.unsupported_reason(op, exc))
            raise TraceStopped(f"line {line}: {checks.unsupported_reason(op, exc)}") from exc
        substitute = checks.substitute_op(op, args, kwargs, facts, exc)
        kind = checks.op_event_kind(op, exc)
        self._event(kind, op, op, line, facts, chain, error=first_line(exc))
        if substitute is None:
            raise TraceStopped(f"line {line}: {op}: {first_line(exc)}") from exc
        self._record("op", op, op, line, in_shapes, substitute, error=first_line(exc), inputs=_tensors((args, kwargs)))
        self._carry_origin(args, substitute, made_by=(op, line) if op in RESHAPE_OPS else None)
        return substitute

    # -- bookkeeping ---------------------------------------------------------------------
    def frame_line(self, frame) -> int | None:
        """The line in the user's file that (indirectly) made this call."""
        while frame is not None:
            if frame.f_code.co_filename == self.path:
                return frame.f_lineno
            frame = frame.f_back
        return None

    def _none_on_line(self, line: int):
        """The None default read on ``line`` of the innermost frame of the user's file, if any."""
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != self.path:
            frame = frame.f_back
        return unsupplied_in_frame(frame, line, self.path) if frame is not None else None

    def caller_line(self, frame) -> int | None:
        """The user's line if the user's file called this torch function directly."""
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename not in _WRAPPER_FILES:
                return frame.f_lineno if filename == self.path else None
            frame = frame.f_back
        return None

    def _record(self, kind, name, op, line, in_shapes, out, module=None, func=None, args=(), kwargs=None,
                error="", inputs=()):
        out_shapes = tuple(shape_of(t) for t in _tensors(out))
        note, steps, stage = checks.explain(module, func, args, kwargs or {}, in_shapes, out_shapes, name) \
            if self.explain else ("", (), None)
        record = ShapeRecord(name=name, kind=kind, op=op, in_shapes=in_shapes, out_shapes=out_shapes, line=line,
                             note=note, steps=steps, error=error, sources=self._sources_of(inputs),
                             scope=self._scope(sys._getframe(1)))
        self.result.records.append(record)
        self._produce(_tensors(out), (len(self.result.records) - 1,))
        if note and checks.changes_spatial(record):
            self.spatial_steps.append(f"{name} (line {line}): {note}" if line else f"{name}: {note}")
            self.result.stages.append(stage)

    def _produce(self, tensors, sources: tuple[int, ...]) -> None:
        for t in tensors:
            self.producers[id(t)] = (t, sources)

    def _sources_of(self, tensors) -> tuple[int, ...]:
        """The records that made these tensors, in order, each once."""
        found: dict[int, None] = {}
        for t in tensors:
            entry = self.producers.get(id(t))
            if entry is not None and entry[0] is t:
                found.update(dict.fromkeys(entry[1]))
        return tuple(found)

    def _merges(self, tensors) -> bool:
        """Two or more distinct inputs carry data from the model's input (weights and constants do not)."""
        return len({id(t) for t in tensors if self._sources_of((t,))}) > 1

    def _pass_through(self, tensors_in, out):
        """An op not recorded: its outputs come from whatever made its inputs."""
        self._produce(_tensors(out), self._sources_of(tensors_in))
        return out

    def _scope(self, frame) -> str:
        """The module path of the innermost forward in the user's file on the stack."""
        while frame is not None:
            if frame.f_code.co_filename == self.path:
                owner = frame.f_locals.get("self")
                if owner is not None and id(owner) in self.names:
                    return self.names[id(owner)]
            frame = frame.f_back
        return ""

    def _event(self, kind, name, op, line, facts, chain=(), error=""):
        self.result.events.append(TraceEvent(
            kind=kind, name=name, op=op, line=line, facts=dict(facts), chain=tuple(chain), error=error,
            record=len(self.result.records)))

    def _stop(self, reason: str) -> None:
        self.result.stopped = True
        self.result.stop_reason = reason

    def _out_of_time(self, late) -> None:
        """The budget ran out: the layers reached so far stand (a partial check)."""
        where = self.result.records[-1].name if self.result.records else ""
        after = f" after `{where}`" if where else ""
        self.result.out_of_time = late.seconds
        count = len(self.result.records)
        self._stop(f"the trace {late.message}{after}; what came before ({count} layer{'s' if count != 1 else ''} "
                   f"or op{'s' if count != 1 else ''}) is checked; pass --timeout to allow more")

    def _unsupplied(self, found, exc: Exception) -> str:
        """A None default that real callers replace was used: an event, and why the check stops."""
        if found is None:
            return ""
        facts = {"param": found.name, "used": found.used, "constructor": found.constructor}
        self._event("missing_value", found.used, "forward", found.line, facts, error=first_line(exc))
        return f"line {found.line}: needs a value for `{found.name}`"

    def _unplaced_error(self, exc: Exception) -> None:
        line = user_line(exc, self.path)
        reason = self._unsupplied(unsupplied_from_exception(exc, self.path), exc)
        if reason:
            self._stop(reason)
            return
        unset = unset_global(exc, self.path)
        if checks.is_unsupported(exc) or unset:
            reason = unset or checks.unsupported_reason("", exc)
            self._event("unsupported", type(exc).__name__, "forward", line, {}, error=reason)
            self._stop(f"line {line}: {reason}" if line else reason)
            return
        self._event("torch_error", type(exc).__name__, "forward", line, {}, error=first_line(exc))
        self._stop(first_line(exc))

    def _carry_origin(self, args, out, made_by=None):
        """Remember how a flattened tensor was made, and pass that on through same-shape ops."""
        outs = _tensors(out)
        ins = _tensors(args)
        if not outs or not ins:
            return
        src, dst = ins[0], outs[0]
        if made_by is not None:
            info = {"shape": shape_of(src), "op": made_by[0], "line": made_by[1],
                    "chain": self.origin_chain(src, spatial_only=True)}
            self.origins[id(dst)] = (dst, info)
        elif id(src) in self.origins and shape_of(src) == shape_of(dst):
            self.origins[id(dst)] = (dst, self.origins[id(src)][1])

    def origin_of(self, t) -> dict | None:
        entry = self.origins.get(id(t))
        return entry[1] if entry and entry[0] is t else None

    def origin_chain(self, t, spatial_only: bool = False) -> tuple[str, ...]:
        """The recorded steps that changed spatial sizes so far, oldest first."""
        origin = self.origin_of(t)
        if origin is not None and not spatial_only:
            return origin["chain"]
        return tuple(self.spatial_steps)


class _Recorder(TorchFunctionMode):
    def __init__(self, tracer: Tracer):
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        deadline.check()
        real = made_for_real(func, args, kwargs or {}) if self.tracer.session.plain else None
        if real is not None:
            return call_user(func, *real[0], **real[1])
        args, kwargs = onto_trace_device(args, kwargs or {}, self.tracer.device)
        line = self.tracer.caller_line(sys._getframe(1))
        if line is None:
            quick = shortcut(func, args, kwargs)
            return quick if quick is not None else call_user(func, *args, **kwargs)
        return self.tracer.run_op(func, args, kwargs, line)


@contextlib.contextmanager
def _seeded():
    """The trace draws its random numbers (a tensor made for real in forward: a random layer
    drop) from a fixed seed, so that every check of a model follows the same path; the
    caller's random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def missing_inputs(model, given: int, named=()) -> list[str]:
    """The names of ``model.forward``'s required arguments that ``given`` positional inputs and
    those ``named`` leave out."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keyword = [p for p in params if p.kind is p.KEYWORD_ONLY]
    return [p.name for p in positional[given:] + keyword if p.default is p.empty and p.name not in named]


def is_leaf(module: torch.nn.Module) -> bool:
    """A layer whose class comes from torch.nn and is not a container."""
    cls = type(module)
    return cls.__module__.startswith("torch.nn.") and not isinstance(module, CONTAINERS)


def op_name(func) -> str:
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":  # properties such as Tensor.shape / Tensor.T
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name


def _tensors(obj) -> list[torch.Tensor]:
    """The tensors in ``obj``, in the order of ``tree_flatten`` (this runs on every op of a trace:
    plain tuples, lists and dicts are walked here, anything else that may hold tensors by pytree)."""
    found: list[torch.Tensor] = []
    _collect_tensors(obj, found)
    return found


_LEAVES = frozenset({int, float, bool, str, type(None), slice, type(Ellipsis), torch.dtype, torch.device})


def _collect_tensors(obj, found: list) -> None:
    kind = type(obj)
    if kind is tuple or kind is list:
        for item in obj:
            _collect_tensors(item, found)
    elif kind is dict:
        for item in obj.values():
            _collect_tensors(item, found)
    elif isinstance(obj, torch.Tensor):
        found.append(obj)
    elif kind not in _LEAVES:
        found.extend(t for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor))


def _describe_args(args) -> tuple:
    """Reshape arguments as plain values: ints stay ints, sizes become their example value."""
    flat = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)) else args
    return tuple(size_value(a) if isinstance(a, (int, torch.SymInt)) else repr(a) for a in flat)




@contextlib.contextmanager
def _shape_only_mask_test():
    """torch's transformers compare an attention mask with a causal one by value, only to pick a
    faster kernel; on meta or fake tensors there are no values, and the output shape is the same
    either way, so the comparison answers "not known to be causal" during the trace."""
    from torch.nn.modules import transformer

    original = getattr(transformer, "_detect_is_causal_mask", None)
    if original is None:
        yield
        return

    def detect(mask, is_causal=None, size=None):
        if mask is not None and is_causal is None and (mask.device.type == "meta" or _is_fake(mask)):
            return False
        return original(mask, is_causal, size)

    transformer._detect_is_causal_mask = detect
    try:
        yield
    finally:
        transformer._detect_is_causal_mask = original


def _is_fake(tensor) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(tensor, FakeTensor)
